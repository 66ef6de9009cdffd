"""The labelling configuration a local run uses, parsed as the Lambdas parse it.

Before the run starts it is the uploaded file over the stack's ``LABELING_DEFAULTS`` (``boxloop.config.parse_config``
with the defaults the synthesized functions get, read as the Lambdas read them); once RegisterPool has run it is
the run's own snapshot, ``runs/<run>/config.json``, which is what every later step reads.
"""

from __future__ import annotations

from typing import Any

from boxloop.config import LabelingConfig, parse_config
from boxloop.layout import RunLayout
from boxloop.local.process_environment import PROCESS_ENVIRONMENT
from boxloop.local.resources import LocalResources
from lambdas.environment import lambda_environment


def config_over_stack_defaults(config_bytes: bytes, resources: LocalResources) -> LabelingConfig:
    """The uploaded configuration merged over the stack's labelling defaults; ConfigError naming the field."""
    with PROCESS_ENVIRONMENT.applied(resources.shared_environment, owner="the local run's configuration"):
        defaults = lambda_environment().labeling_defaults
    return parse_config(config_bytes, defaults)


def read_run_config(s3: Any, bucket: str, run_id: str) -> LabelingConfig | None:
    """The run's configuration snapshot (written by RegisterPool, defaults merged), or None before it exists."""
    try:
        body = s3.get_object(Bucket=bucket, Key=RunLayout(bucket=bucket, run_id=run_id).config)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return parse_config(body)
