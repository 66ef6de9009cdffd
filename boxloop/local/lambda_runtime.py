"""Lambda functions created in moto run in this process (moto runs Lambda code only in Docker).

Hook point (moto 5.2.5): ``moto.awslambda.models.LambdaFunction._invoke_lambda(self, event)
-> (payload_json, errored, logs)``. Every invocation path reaches it while moto's lambda
config keeps ``use_docker`` at its default (``True``): boto3 ``invoke``, Step Functions
``lambda:invoke``, S3 notifications and SQS event-source mappings.

The function's ``Handler`` (``lambdas.loop.compute_threshold.handler``) is imported from
this project, not from the uploaded zip, and called with the event and a Lambda-like
context. Limits of running in-process:

- Environment variables are process-wide: the function's variables are applied with
  ``process_environment.PROCESS_ENVIRONMENT`` (invocations whose variables agree run
  concurrently, conflicting ones wait for each other).
- No timeout and no memory limit are enforced; ``get_remaining_time_in_millis`` reports
  the configured timeout minus the time spent so far.
- Imported handler modules stay imported: module-level state lives as long as the process.
- What a handler prints to stdout (Powertools' logs and metrics) goes to the function's log in
  moto's CloudWatch Logs, as on AWS, not to the terminal (``HandlerOutput``).

Each invocation's handler time is recorded in ``usage.USAGE`` (the run's ``usage.json``).

``INVOCATIONS.paused()`` holds new invocations back and waits for running ones to finish,
so the local run can copy the embedded AWS's state while no handler changes it.
"""

from __future__ import annotations

import importlib
import io
import json
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.awslambda.models import LambdaFunction

from boxloop.local.process_environment import PROCESS_ENVIRONMENT
from boxloop.local.usage import USAGE

Handler = Callable[[Any, Any], Any]

_RUNTIME_ENVIRONMENT: dict[str, str] = {}
"""Variables every invocation gets besides its function's (the runtime's own settings, e.g. log level)."""


class InvocationsBusyError(RuntimeError):
    """Running invocations did not finish within the time ``InvocationGate.paused`` may wait."""


class InvocationGate:
    """Invocations run concurrently while the gate is open; ``paused`` closes it for a quiet moment."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._running = 0
        self._paused = False

    @contextmanager
    def invocation(self) -> Iterator[None]:
        """Hold one invocation: waits while the gate is paused."""
        with self._condition:
            self._condition.wait_for(lambda: not self._paused)
            self._running += 1
        try:
            yield
        finally:
            with self._condition:
                self._running -= 1
                self._condition.notify_all()

    @contextmanager
    def paused(self, wait_seconds: float = 30.0) -> Iterator[None]:
        """Run the block with no invocation running and new ones held back.

        Raises InvocationsBusyError (and reopens the gate) when running invocations do not
        finish within ``wait_seconds``: one of them may be waiting for an invocation held back.
        """
        with self._condition:
            self._paused = True
            if not self._condition.wait_for(lambda: self._running == 0, timeout=wait_seconds):
                self._paused = False
                self._condition.notify_all()
                raise InvocationsBusyError(f"Lambda invocations still running after {wait_seconds:.0f} s")
        try:
            yield
        finally:
            with self._condition:
                self._paused = False
                self._condition.notify_all()


INVOCATIONS = InvocationGate()
"""The gate every in-process invocation passes."""


class HandlerOutput(io.TextIOBase):
    """``sys.stdout`` while the runtime is installed: text written by a thread inside an invocation is
    kept for that invocation's log; everything else goes to the stream it replaced."""

    def __init__(self, passthrough: Any) -> None:
        self.passthrough = passthrough
        self._buffers = threading.local()

    def write(self, text: str) -> int:
        stack = getattr(self._buffers, "stack", None)
        if stack:
            stack[-1].write(text)
            return len(text)
        return self.passthrough.write(text)

    def flush(self) -> None:
        self.passthrough.flush()

    def isatty(self) -> bool:
        return self.passthrough.isatty()

    def fileno(self) -> int:
        return self.passthrough.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.passthrough.encoding

    @contextmanager
    def captured(self) -> Iterator[io.StringIO]:
        """Keep what this thread writes during the block (nested blocks keep their own)."""
        buffer = io.StringIO()
        stack = getattr(self._buffers, "stack", None)
        if stack is None:
            stack = self._buffers.stack = []
        stack.append(buffer)
        try:
            yield buffer
        finally:
            stack.pop()


_OUTPUT: list[HandlerOutput] = []
"""The one ``HandlerOutput`` of this process, once ``install`` has put it in place."""


@contextmanager
def _handler_output() -> Iterator[io.StringIO | None]:
    if not _OUTPUT:
        yield None
        return
    with _OUTPUT[0].captured() as buffer:
        yield buffer


@dataclass(frozen=True)
class LambdaContext:
    """The parts of the Lambda context object handlers (and Powertools) read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_monotonic: float

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left of the configured timeout (informational: nothing stops the handler)."""
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


def resolve_handler(handler: str) -> Handler:
    """Import ``package.module.function`` and return the function; errors name the handler string."""
    module_name, _, attribute = handler.rpartition(".")
    if not module_name:
        raise ImportError(f"Lambda handler {handler!r} is not of the form 'module.function'")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError as exc:
        raise ImportError(f"Lambda handler {handler!r}: module {module_name!r} has no {attribute!r}") from exc


def _error_payload(exc: BaseException) -> str:
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": traceback.format_exception(exc),
        }
    )


def invoke_in_process(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    """Call ``function``'s handler with ``event``; returns (JSON payload, errored, log tail)."""
    if isinstance(event, (str, bytes)):
        event = json.loads(event) if event else {}
    elif event is None:
        event = {}
    variables = {
        **_RUNTIME_ENVIRONMENT,
        **{name: str(value) for name, value in (function.environment_vars or {}).items()},
    }
    context = LambdaContext(
        function_name=function.function_name,
        function_version=str(function.version),
        invoked_function_arn=function.function_arn,
        memory_limit_in_mb=int(function.memory_size),
        aws_request_id=str(uuid.uuid4()),
        log_group_name=function.logs_group_name,
        log_stream_name=f"local/{function.function_name}",
        deadline_monotonic=time.monotonic() + float(function.timeout),
    )
    owner = f"Lambda function {function.function_name}"
    with INVOCATIONS.invocation(), PROCESS_ENVIRONMENT.applied(variables, owner=owner), _handler_output() as output:
        started = time.perf_counter()
        try:
            result = resolve_handler(function.handler)(event, context)
            payload, errored = json.dumps(result), False
        except Exception as exc:  # a handler's failure is the invocation's result, as on AWS
            payload, errored = _error_payload(exc), True
        elapsed = time.perf_counter() - started
    USAGE.record_invocation(function.function_name, function.handler, int(function.memory_size), elapsed)
    printed = output.getvalue() if output is not None else ""
    function.logs_backend.ensure_log_group(function.logs_group_name)
    function.save_logs(printed + payload)
    return payload, errored, ""


def install(runtime_environment: Mapping[str, str] | None = None) -> None:
    """Route every moto Lambda invocation in this process to ``invoke_in_process`` (idempotent).

    ``runtime_environment``: variables every invocation also gets, as a Lambda runtime sets
    its own (a function's variables win on a clash), e.g. ``POWERTOOLS_LOG_LEVEL``.
    """
    _RUNTIME_ENVIRONMENT.clear()
    _RUNTIME_ENVIRONMENT.update(runtime_environment or {})
    LambdaFunction._invoke_lambda = invoke_in_process
    if not _OUTPUT:
        _OUTPUT.append(HandlerOutput(sys.stdout))
        sys.stdout = _OUTPUT[0]
