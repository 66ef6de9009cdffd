"""API Gateway HTTP API and Lambda, played in this process for the local labelling app.

``http_api_event`` turns one HTTP request into the payload-2.0 event API Gateway sends a Lambda (with
the labeller as the JWT claim its authorizer would add); ``handler_invoker`` calls a Lambda handler.

The handler's variables are set process-wide while the app runs (``process_variables``), not per
request through ``PROCESS_ENVIRONMENT``: an answer's S3 write makes the embedded AWS run the
human-answer Lambda synchronously, inside the request, and that invocation would otherwise wait for
the request to leave while another holder (the run's display) keeps a different service name applied.
The variables agree with every function's, except the per-function ``POWERTOOLS_SERVICE_NAME``,
which is left out.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from boxloop.local.lambda_runtime import resolve_handler

LAMBDA_ONLY_VARIABLES = ("POWERTOOLS_SERVICE_NAME",)
"""Each function's own: left out of the variables set process-wide."""

Invoke = Callable[[dict[str, Any]], dict[str, Any]]


def http_api_event(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    worker_id: str | None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The API Gateway HTTP API (payload format 2.0) event for one request; ``worker_id`` as the JWT claim
    ``username`` (API Gateway's JWT authorizer puts the token's claims there)."""
    now = datetime.now(UTC)
    lowered = {name.lower(): value for name, value in headers.items()}
    text = body.decode("utf-8", errors="replace") if body else None
    parameters: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
    authorizer = {"jwt": {"claims": {"username": worker_id}, "scopes": []}} if worker_id else {}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "cookies": [],
        "headers": lowered,
        "queryStringParameters": parameters or None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "authorizer": authorizer,
            "domainName": lowered.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": text,
        "isBase64Encoded": False,
    }


class LocalLambdaContext:
    """The parts of a Lambda context the API's handler (Powertools) reads."""

    function_name = "boxloop-labelling-api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:boxloop-labelling-api"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def handler_invoker(handler: str) -> Invoke:
    """Call the Lambda handler ``handler`` (``module.function``) in this process with a Lambda-like context."""
    function = resolve_handler(handler)

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return function(event, LocalLambdaContext())

    return invoke


@contextmanager
def process_variables(environment: Mapping[str, str]) -> Iterator[None]:
    """Set a function's variables (``LAMBDA_ONLY_VARIABLES`` left out) in ``os.environ`` for the block."""
    variables = {name: value for name, value in environment.items() if name not in LAMBDA_ONLY_VARIABLES}
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
