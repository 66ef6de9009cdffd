"""RegisterPool's answer: ``$.iteration``, what the later states of an iteration read (docs/stack.md).

Job names carry a short token of the execution name, so a resumed run's SageMaker jobs never collide
with the jobs of the execution that failed.
"""

from __future__ import annotations

import hashlib
import json

from boxloop.config import LabelingConfig
from boxloop.layout import RunLayout, iteration_label

JOB_TOKEN_LENGTH = 6
"""Hex digits of the per-execution token in job names (run ids ≤ 44 characters keep names ≤ 63)."""


def job_token(execution_name: str) -> str:
    """A short token that differs per execution, so a resumed run's job names never collide with old ones."""
    return hashlib.sha256(execution_name.encode()).hexdigest()[:JOB_TOKEN_LENGTH]


def iteration_context(
    layout: RunLayout,
    iteration: int,
    execution_name: str,
    config: LabelingConfig,
    warm_start_uri: str | None,
    *,
    training_model: str,
    training_max_seconds: int,
    training_epochs: int,
    training_min_steps: int,
) -> dict:
    """``$.iteration``: the iteration's number, job token, data locations, training hyperparameters and human timeout."""
    label = iteration_label(iteration)
    token = job_token(execution_name)
    uris = {
        "inference_input": layout.uri(layout.inference_input(iteration)),
        "train": layout.uri(layout.training_channel(iteration, "train")),
        "validation": layout.uri(layout.training_channel(iteration, "validation")),
        "model_output": layout.uri(layout.model_output(iteration)),
        "inference": layout.uri(layout.inference(iteration)),
    }
    if warm_start_uri is not None:
        uris["warm_start"] = warm_start_uri
    return {
        "number": iteration,
        "label": label,
        "job_token": token,
        "uris": uris,
        "keys": {
            "pool": layout.pool_prefix,
            "inference_input": layout.inference_input(iteration),
            "inference": layout.inference(iteration),
            "tasks": layout.tasks(iteration),
            "threshold": layout.threshold(iteration),
            "metrics": layout.metrics(iteration),
        },
        "hyperparameters": {
            "classes": json.dumps(config.classes),
            "label_attribute": config.label_attribute,
            "epochs": str(training_epochs),
            "min_steps": str(training_min_steps),
            "max_seconds": str(training_max_seconds),
            "model": training_model,
            "model_version": f"{layout.run_id}-i{label}-{token}-train",
        },
        "human_timeout_seconds": config.workforce.batch_timeout_seconds,
    }
