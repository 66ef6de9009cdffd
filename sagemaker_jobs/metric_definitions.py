"""The metric lines the training job prints, and the regexes SageMaker parses them with.

Torch-free so the CDK stack can import ``METRIC_DEFINITIONS`` for the training
job's ``MetricDefinitions``. A line looks like::

    boxloop_metric epoch=3; train_loss=1.234; val_map50=0.912; val_miou=0.801;
"""

from __future__ import annotations

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
