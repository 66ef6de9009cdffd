"""Powertools Logger, Metrics and Tracer: created once, shared by every handler module.

They read their settings (``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``, …) from the
environment when this module is first imported. On AWS every function runs in its own process, so
that is the function's own service (``infra/lambda_image.py`` sets it per function). The local run
invokes every function in one process (``boxloop/local/lambda_runtime.py`` applies each function's
variables per invocation, never two different service names at once), so ``lambda_handler`` names
the service of each invocation from its environment.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

from lambdas.environment import lambda_environment

logger = Logger()
metrics = Metrics()
tracer = Tracer()

Handler = Callable[[Any, Any], Any]


def name_service(service_name: str | None) -> None:
    """Log, measure and trace what follows as ``service_name`` (None: keep the current service)."""
    if service_name is None or service_name == logger.service:
        return
    logger.service = service_name
    logger.append_keys(service=service_name)
    metrics.service = service_name
    tracer.service = service_name


def lambda_handler(handler: Handler) -> Handler:
    """A Lambda entry point: the invocation's service name, its context in the logs, metrics flushed, traced."""
    observed = logger.inject_lambda_context(metrics.log_metrics(tracer.capture_lambda_handler(handler)))

    @functools.wraps(handler)
    def entry(event: Any, context: Any) -> Any:
        name_service(lambda_environment().service_name)
        return observed(event, context)

    return entry
