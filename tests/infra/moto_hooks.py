"""Test hook: moto's Lambda invocations call Python functions in-process (moto runs no Lambda code without Docker).

Adapted from the verified hook in notes/moto-hooks/inproc_lambda.py. ``invoke_in_process``
patches ``LambdaFunction._invoke_lambda`` for the duration of a ``with`` block.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import SimpleNamespace
from unittest import mock

from moto.awslambda.models import LambdaFunction

Handler = Callable[[dict, object], object]


def stand_in_function_zip() -> bytes:
    """A valid deployment package for ``create_function`` (its code never runs)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    raise RuntimeError('not in-process')\n")
    return buffer.getvalue()


@contextmanager
def invoke_in_process(handlers: Mapping[str, Handler]) -> Iterator[list[tuple[str, dict]]]:
    """Route invocations of the named functions to ``handlers``; yields the list of (function, event) calls."""
    calls: list[tuple[str, dict]] = []

    def invoke(self: LambdaFunction, event=None):
        payload = json.loads(event) if isinstance(event, (str, bytes)) else event
        calls.append((self.function_name, payload))
        context = SimpleNamespace(
            function_name=self.function_name, aws_request_id="local", get_remaining_time_in_millis=lambda: 900_000
        )
        try:
            return json.dumps(handlers[self.function_name](payload, context)), False, ""
        except Exception as exc:  # the Lambda runtime reports any exception as a function error
            return json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}), True, ""

    with mock.patch.object(LambdaFunction, "_invoke_lambda", invoke):
        yield calls
