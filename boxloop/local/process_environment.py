"""Per-invocation environment variables on the one environment a process has.

Locally every Lambda handler and every transform job runs in this process, and
``os.environ`` is process-wide: there is no way to give two threads different
values for the same variable. ``SharedEnvironment.applied`` therefore lets
invocations run at the same time only while their variables agree; one whose
variables conflict with those applied waits until the others finish. Variables
are restored once the last holder leaves.

Code outside invocations that reads the whole environment (creating a boto3 client
iterates ``os.environ`` for proxy settings; starting a subprocess copies it) must not
race a restore, which deletes variables: ``os.environ``'s iteration snapshots the
names, then looks each one up, and raises KeyError for a name deleted in between.
Such code holds the environment ``steady`` (a holder without variables: nothing is
restored while it runs) or takes a ``snapshot``.

Limits, by construction: a variable set by one holder is visible to every other
holder for as long as it runs, and an invocation nested in the same thread with
conflicting variables cannot wait for its caller, so it fails at once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


class EnvironmentConflictError(RuntimeError):
    """Variables could not be applied because other running code needs different values."""


class SharedEnvironment:
    """Applies variables to ``os.environ`` for the duration of a ``with`` block, sharing compatible ones."""

    def __init__(self, wait_seconds: float = 600.0) -> None:
        self._wait_seconds = wait_seconds
        self._condition = threading.Condition()
        self._applied: dict[str, str] = {}
        self._saved: dict[str, str | None] = {}
        self._holders: dict[int, int] = {}

    def _conflicts(self, variables: Mapping[str, str]) -> list[str]:
        return sorted(name for name, value in variables.items() if self._applied.get(name, value) != value)

    @contextmanager
    def applied(self, variables: Mapping[str, str], owner: str) -> Iterator[None]:
        """Run the block with ``variables`` set; ``owner`` names the caller in conflict errors."""
        thread_id = threading.get_ident()
        with self._condition:
            conflicts = self._conflicts(variables)
            if conflicts and self._holders.get(thread_id):
                raise EnvironmentConflictError(
                    f"{owner} runs nested in code that set different values for {conflicts}; "
                    "locally all invocations share one process environment"
                )
            if not self._condition.wait_for(lambda: not self._conflicts(variables), timeout=self._wait_seconds):
                raise EnvironmentConflictError(
                    f"{owner} waited {self._wait_seconds:.0f} s for running code that set different values "
                    f"for {self._conflicts(variables)}"
                )
            for name, value in variables.items():
                if name not in self._applied:
                    self._saved[name] = os.environ.get(name)
                    os.environ[name] = value
                    self._applied[name] = value
            self._holders[thread_id] = self._holders.get(thread_id, 0) + 1
        try:
            yield
        finally:
            with self._condition:
                self._holders[thread_id] -= 1
                if not self._holders[thread_id]:
                    del self._holders[thread_id]
                if not self._holders:
                    self._restore()
                    self._condition.notify_all()

    @contextmanager
    def steady(self) -> Iterator[None]:
        """Run the block with no variable restored meanwhile (for code that iterates ``os.environ``)."""
        with self.applied({}, owner="steady"):
            yield

    def snapshot(self) -> dict[str, str]:
        """A copy of the whole environment, taken while no holder sets or restores variables."""
        with self._condition:
            return dict(os.environ)

    def _restore(self) -> None:
        for name, previous in self._saved.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous
        self._saved.clear()
        self._applied.clear()


PROCESS_ENVIRONMENT = SharedEnvironment()
"""The one instance every local hook uses (there is one ``os.environ`` per process)."""
