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


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"classes": ["a"], "human_budget_hours": 1e999}', "human_budget_hours"),
        ('{"classes": ["a"], "human_budget_hours": Infinity}', "human_budget_hours"),
        ('{"classes": ["a"], "quality": {"target_miou": NaN}}', "quality.target_miou"),
        ('{"classes": ["a"], "qc": {"size_outlier_z": Infinity}}', "qc.size_outlier_z"),
        ('{"classes": ["a"], "expected_objects_per_image": -Infinity}', "expected_objects_per_image"),
        ('{"classes": ["a"], "human_budget_hours": 1e7}', "human_budget_hours"),
        ('{"classes": ["a"], "initial_sample_size": 1e30}', "initial_sample_size"),
        ('{"classes": ["a"], "workforce": {"task_timeout_seconds": 99999999}}', "workforce.task_timeout_seconds"),
        ('{"classes": ["a"], "seed": -1}', "seed"),
    ],
)
def test_numbers_must_be_finite_and_within_their_bounds(raw, field):
    with pytest.raises(ConfigError, match=rf"{field}: "):
        parse_config(raw)


def test_non_finite_environment_defaults_are_rejected_too():
    with pytest.raises(ConfigError, match="human_budget_hours: Input should be a finite number"):
        parse_config('{"classes": ["a"]}', '{"human_budget_hours": Infinity}')


def test_class_names_are_trimmed_and_unique_after_trimming():
    assert parse_config('{"classes": ["  bottle", "can  "]}').classes == ["bottle", "can"]
    with pytest.raises(ConfigError, match=r"classes: .*unique after trimming.*\['a'\]"):
        parse_config('{"classes": ["a", " a"]}')
    with pytest.raises(ConfigError, match="classes: .*non-empty"):
        parse_config('{"classes": ["a", "   "]}')
    with pytest.raises(ConfigError, match="classes: .*control characters"):
        parse_config('{"classes": ["a\\nb"]}')
    with pytest.raises(ConfigError, match="classes: .*at most 100 characters"):
        parse_config('{"classes": ["%s"]}' % ("x" * 101))


def test_not_json_is_a_clear_error():
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_config(b"{classes")


def test_uploaded_config_is_merged_over_environment_defaults():
    defaults = {"human_budget_hours": 12, "quality": {"target_miou": 0.7, "delta": 0.1}}
    config = parse_config('{"classes": ["a"], "quality": {"delta": 0.05}}', defaults)
    assert config.human_budget_hours == 12
    assert config.quality.target_miou == 0.7
    assert config.quality.delta == 0.05


def test_a_merged_config_is_its_own_complete_snapshot():
    merged = parse_config(
        '{"classes": ["a"], "quality": {"delta": 0.1}}', {"human_budget_hours": 12, "max_iterations": 3}
    )

    assert parse_config(merged.model_dump_json()) == merged  # what RegisterPool writes needs no defaults again
    assert parse_config(merged.model_dump_json(), {"human_budget_hours": 99}).human_budget_hours == 12


def test_bad_environment_defaults_are_named():
    with pytest.raises(ConfigError, match="labelling defaults is not valid JSON"):
        parse_config('{"classes": ["a"]}', "{oops")
