"""The local run's progress display: a rich Live panel on a terminal, change-only lines elsewhere.

On a terminal the panel shows the iteration, the Step Functions state, the
images auto-labelled / human-labelled / left, human hours against the budget,
the current threshold and bound, and the elapsed time and ETA of the current
step. When the console is not a terminal (CI logs) the same figures are
printed as one line each time they change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from boxloop.models import IterationMetrics

PLAIN_PROGRESS_STEP = 0.1


def format_duration(seconds: float) -> str:
    """A duration as ``1h 02m``, ``3m 05s`` or ``12s``."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


class RunProgress:
    """Progress of one local run; use as a context manager and call ``update`` as the run moves."""

    def __init__(
        self,
        run_id: str,
        human_budget_seconds: float,
        *,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
        refresh_per_second: float = 4.0,
    ) -> None:
        self._run_id = run_id
        self._budget_seconds = human_budget_seconds
        self._console = console or Console()
        self._clock = clock
        self._refresh_per_second = refresh_per_second
        self._lock = threading.Lock()
        self._started_at = clock()
        self._state: str | None = None
        self._state_started_at = self._started_at
        self._iteration: int | None = None
        self._metrics: dict[int, IterationMetrics] = {}
        self._step_progress: tuple[int, int] | None = None
        self._step_eta: tuple[float, float] | None = None  # (seconds left, when it was said)
        self._live: Live | None = None
        self._last_plain_key: tuple | None = None

    @property
    def is_live(self) -> bool:
        """True when the display is a live panel (the console is a terminal)."""
        return self._console.is_terminal

    def __enter__(self) -> RunProgress:
        self._started_at = self._state_started_at = self._clock()
        if self.is_live:
            self._live = Live(
                console=self._console,
                get_renderable=self._render,
                refresh_per_second=self._refresh_per_second,
                transient=False,
                redirect_stdout=False,  # the local Lambda runtime keeps handlers' output off the terminal
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def update(
        self,
        *,
        state: str | None = None,
        iteration: int | None = None,
        metrics: IterationMetrics | None = None,
        step_progress: tuple[int, int] | None = None,
        step_eta_seconds: float | None = None,
        human_budget_seconds: float | None = None,
    ) -> None:
        """Record what changed; arguments left as None keep their value.

        A new ``state`` restarts the step clock and clears the step's progress
        and ETA. ``metrics`` is an iteration's ``metrics.json``; counts add up
        over iterations (a repeated iteration replaces its earlier figures).
        ``step_progress`` is (done, total) within the step, e.g. images
        inferred; ``step_eta_seconds`` is the time the step still needs as of
        now, e.g. the training job's steps still to train at its pace so far. ``human_budget_seconds`` replaces the
        budget given at the start, e.g. with the budget of the configuration the run uses once it is known.
        """
        with self._lock:
            now = self._clock()
            if state is not None and state != self._state:
                self._state = state
                self._state_started_at = now
                self._step_progress = None
                self._step_eta = None
            if iteration is not None:
                self._iteration = iteration
            if metrics is not None:
                self._metrics[metrics.iteration] = metrics
                if self._iteration is None or metrics.iteration > self._iteration:
                    self._iteration = metrics.iteration
            if step_progress is not None:
                done, total = step_progress
                if total < 0 or not 0 <= done <= max(total, 0):
                    raise ValueError(f"step_progress {step_progress!r} must satisfy 0 <= done <= total")
                self._step_progress = (done, total)
            if step_eta_seconds is not None:
                self._step_eta = (max(0.0, step_eta_seconds), now)
            if human_budget_seconds is not None:
                if human_budget_seconds <= 0:
                    raise ValueError(f"human_budget_seconds {human_budget_seconds!r} must be positive")
                self._budget_seconds = human_budget_seconds
        self._show()

    def log(self, message: str) -> None:
        """Print a message above the live panel (or as a plain line)."""
        self._console.print(message, markup=False, highlight=False)

    def _show(self) -> None:
        if self._live is not None:
            self._live.refresh()
        elif not self.is_live:
            self._print_plain_if_changed()

    # --- figures -------------------------------------------------------------------------------------

    def _counts(self) -> tuple[int, int, int | None]:
        auto = sum(m.auto_labelled for m in self._metrics.values())
        human = sum(m.human_labelled + m.audit_labelled for m in self._metrics.values())
        left = self._metrics[max(self._metrics)].unlabelled_remaining if self._metrics else None
        return auto, human, left

    def _human_seconds(self) -> float:
        return self._metrics[max(self._metrics)].human_seconds_total if self._metrics else 0.0

    def _threshold_text(self) -> str:
        decided = [iteration for iteration, metrics in self._metrics.items() if metrics.threshold is not None]
        if not decided:
            return "not computed yet"
        latest = self._metrics[max(decided)].threshold
        if latest.threshold is None:
            return f"none: nothing auto-labelled (target {latest.target:.2f})"
        return f"t = {latest.threshold:.3f}, lower bound {latest.lower_bound:.3f} (target {latest.target:.2f})"

    def _step_eta_seconds(self, now: float) -> float | None:
        if self._step_eta is not None:
            left, said_at = self._step_eta
            return max(0.0, left - (now - said_at))
        if self._step_progress is not None:
            done, total = self._step_progress
            if done > 0:
                return (now - self._state_started_at) * (total - done) / done
        return None

    def _step_text(self, now: float) -> str:
        parts = [f"step {format_duration(now - self._state_started_at)}"]
        if self._step_progress is not None:
            done, total = self._step_progress
            parts.append(f"{done:,}/{total:,}")
        eta = self._step_eta_seconds(now)
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
        return ", ".join(parts)

    def _human_text(self) -> str:
        used = self._human_seconds()
        share = used / self._budget_seconds if self._budget_seconds else 0.0
        return f"{used / 3600:.2f} h of {self._budget_seconds / 3600:.1f} h ({share:.0%})"

    # --- live panel ----------------------------------------------------------------------------------

    def _render(self) -> RenderableType:
        with self._lock:
            now = self._clock()
            auto, human, left = self._counts()
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="bold cyan", no_wrap=True)
            grid.add_column()
            rows = {
                "iteration": "—" if self._iteration is None else str(self._iteration),
                "state": f"{self._state or 'starting'}  ({self._step_text(now)})",
                "images": (
                    f"auto-labelled {auto:,} · human-labelled {human:,} · left {'—' if left is None else f'{left:,}'}"
                ),
                "human time": self._human_text(),
                "threshold": self._threshold_text(),
                "elapsed": format_duration(now - self._started_at),
            }
            for label, value in rows.items():
                grid.add_row(label, Text(value))
            body: RenderableType = grid
            if self._step_progress is not None and self._step_progress[1] > 0:
                done, total = self._step_progress
                body = Group(grid, ProgressBar(total=total, completed=done, width=40))
            return Panel(body, title=Text(f"boxloop run {self._run_id}"), expand=False)

    # --- plain lines ---------------------------------------------------------------------------------

    def _print_plain_if_changed(self) -> None:
        with self._lock:
            now = self._clock()
            auto, human, left = self._counts()
            progress_bucket = None
            if self._step_progress is not None and self._step_progress[1] > 0:
                done, total = self._step_progress
                progress_bucket = int(done / total / PLAIN_PROGRESS_STEP)
            key = (
                self._iteration,
                self._state,
                auto,
                human,
                left,
                self._human_seconds(),
                self._budget_seconds,
                self._threshold_text(),
                progress_bucket,
            )
            if key == self._last_plain_key:
                return
            self._last_plain_key = key
            line = (
                f"[{format_duration(now - self._started_at)}] iteration "
                f"{'—' if self._iteration is None else self._iteration} · {self._state or 'starting'} "
                f"({self._step_text(now)}) · auto {auto:,} · human {human:,} · "
                f"left {'—' if left is None else f'{left:,}'} · human time {self._human_text()} · "
                f"threshold {self._threshold_text()}"
            )
        self._console.print(line, markup=False, highlight=False, soft_wrap=True)
