"""The metric lines the training job prints, and the regexes SageMaker parses them with.

Torch-free so the CDK stack can import ``METRIC_DEFINITIONS`` for the training
job's ``MetricDefinitions``. A line looks like::

    boxloop_metric epoch=3; train_loss=1.234; val_map50=0.912; val_miou=0.801;
"""

from __future__ import annotations

import re
from collections.abc import Mapping

METRIC_LINE_PREFIX = "boxloop_metric"

METRIC_NAMES: tuple[str, ...] = (
    "epoch",
    "train_loss",
    "val_map50",
    "val_map50_95",
    "val_miou",
    "steps",
    "max_seconds_hit",
)
"""Every metric the job may print; a line carries any subset of them."""

_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"

METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": name, "Regex": rf"{METRIC_LINE_PREFIX} .*?\b{name}={_NUMBER};"} for name in METRIC_NAMES
]
"""SageMaker ``MetricDefinitions`` (``Name`` / ``Regex`` with one capture group)."""


def format_metric_line(metrics: Mapping[str, float]) -> str:
    """One stdout line SageMaker's metric regexes parse; raises KeyError for an undeclared metric name."""
    unknown = sorted(set(metrics) - set(METRIC_NAMES))
    if unknown:
        raise KeyError(f"undeclared metric names {unknown}; declare them in METRIC_NAMES")
    fields = " ".join(f"{name}={float(value):.6g};" for name, value in metrics.items())
    return f"{METRIC_LINE_PREFIX} {fields}"


def format_planned_line(total_steps: int, steps_per_epoch: int, batch_size: int) -> str:
    """The log line that states the steps a job plans before its first step (``training_progress`` reads it)."""
    return f"planned {total_steps} steps ({steps_per_epoch} per epoch, batch {batch_size})"


_PLANNED = re.compile(r"^planned (\d+) steps \(", re.MULTILINE)
_STEPS = re.compile(rf"^{METRIC_LINE_PREFIX} .*?\bsteps={_NUMBER};", re.MULTILINE)


def training_progress(log_text: str) -> tuple[int, int] | None:
    """(steps done, steps planned) from a training job's log so far, or None before it has planned its steps.

    Steps done are those of the last completed epoch line (0 before the first); what is left to train is known
    from the steps, not from ``max_seconds``, which is only a safety stop.
    """
    planned = _PLANNED.search(log_text)
    if planned is None:
        return None
    done = _STEPS.findall(log_text)
    return (int(float(done[-1])) if done else 0), int(planned.group(1))
