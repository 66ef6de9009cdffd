"""The labelling configuration in the data bucket: the user's file over the environment's defaults, and a run's snapshot."""

from __future__ import annotations

from boxloop.config import ConfigError, LabelingConfig, parse_config
from boxloop.layout import CONFIG_KEY, RunLayout
from lambdas.adapters.storage import read_document
from lambdas.environment import lambda_environment


def read_labeling_config(bucket: str, key: str = CONFIG_KEY) -> LabelingConfig:
    """The bucket's labelling configuration merged over the environment's ``LABELING_DEFAULTS``.

    ConfigError (naming the field) when it is missing or invalid.
    """
    raw = read_document(bucket, key)
    if raw is None:
        raise ConfigError(f"s3://{bucket}/{key} does not exist")
    return parse_config(raw, lambda_environment().labeling_defaults)


def read_run_labeling_config(bucket: str, run_id: str) -> LabelingConfig:
    """The run's configuration snapshot (defaults merged); ConfigError when RegisterPool has not written it."""
    key = RunLayout(bucket=bucket, run_id=run_id).config
    raw = read_document(bucket, key)
    if raw is None:
        raise ConfigError(f"s3://{bucket}/{key} is missing: RegisterPool has not run for run {run_id}")
    return parse_config(raw)
