"""The labelling configuration: defaults, and errors that name the field."""

import pytest

from boxloop.config import ConfigError, parse_config


def test_minimal_config_gets_design_defaults():
    config = parse_config('{"classes": ["bottle", "can"]}')
    assert config.quality.target_miou == 0.6
    assert config.quality.delta == 0.05
    assert config.class_map == {"0": "bottle", "1": "can"}
    assert config.human_budget_seconds == 100 * 3600


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"classes": []}', "classes"),
        ('{"classes": ["a", "a"]}', "classes"),
        ('{"classes": ["a"], "quality": {"delta": 0.9}}', "quality.delta"),
        ('{"classes": ["a"], "label_attribute": "box-metadata"}', "label_attribute"),
        ('{"classes": ["a"], "human_budget_hours": -1}', "human_budget_hours"),
        ('{"classes": ["a"], "colour": "red"}', "colour"),
    ],
)
def test_bad_config_names_the_field(raw, field):
    with pytest.raises(ConfigError, match=field):
        parse_config(raw)


def test_not_json_is_a_clear_error():
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_config(b"{classes")


def test_uploaded_config_is_merged_over_environment_defaults():
    defaults = {"human_budget_hours": 12, "quality": {"target_miou": 0.7, "delta": 0.1}}
    config = parse_config('{"classes": ["a"], "quality": {"delta": 0.05}}', defaults)
    assert config.human_budget_hours == 12
    assert config.quality.target_miou == 0.7
    assert config.quality.delta == 0.05


def test_bad_environment_defaults_are_named():
    with pytest.raises(ConfigError, match="labelling defaults is not valid JSON"):
        parse_config('{"classes": ["a"]}', "{oops")
