import io
from datetime import UTC, datetime

import pytest
from rich.console import Console

from boxloop.local.progress import RunProgress, format_duration
from boxloop.models import IterationMetrics, ThresholdSummary
from infra.state_names import COMPUTE_THRESHOLD, RUN_POOL_INFERENCE, TRAIN_DETECTOR


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def metrics(
    iteration: int, auto: int, human: int, remaining: int, seconds_total: float, threshold: float | None = None
) -> IterationMetrics:
    stated = None
    if threshold is not None:
        stated = ThresholdSummary(
            threshold=threshold,
            lower_bound=0.64,
            target=0.6,
            delta=0.05,
            n_validation=100,
            n_validation_above=60,
            statement="s",
        )
    return IterationMetrics(
        run_id="run-1",
        iteration=iteration,
        manifest_version=iteration,
        threshold=stated,
        images_in_pool=1000,
        auto_labelled=auto,
        human_labelled=human,
        audit_labelled=0,
        rejected_by_qc=0,
        unanswered=0,
        unlabelled_remaining=remaining,
        human_seconds=0.0,
        human_seconds_total=seconds_total,
        human_budget_seconds=36000.0,
        finished_at=datetime(2025, 1, 1, tzinfo=UTC),
    )


def last_panel(out: Console) -> str:
    """The last live panel rendered, with runs of whitespace collapsed."""
    text = out.export_text(clear=False)
    return " ".join(text[text.rindex("boxloop run") :].split())


def console(terminal: bool) -> Console:
    return Console(file=io.StringIO(), force_terminal=terminal, width=120, record=True, color_system=None)


@pytest.mark.parametrize(("seconds", "text"), [(12.4, "12s"), (185, "3m 05s"), (3720, "1h 02m"), (-3, "0s")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_live_panel_shows_the_run():
    clock, out = FakeClock(), console(terminal=True)
    with RunProgress("run-1", 36000.0, console=out, clock=clock) as progress:
        assert progress.is_live
        progress.update(state="LabelByHumans", iteration=0)
        progress.update(metrics=metrics(0, auto=0, human=300, remaining=700, seconds_total=3600.0))
        progress.update(metrics=metrics(1, auto=400, human=100, remaining=200, seconds_total=5400.0, threshold=0.812))
        progress.update(state=TRAIN_DETECTOR, step_eta_seconds=600.0)
        clock.now += 120
        progress.log("training started")
    assert "training started" in out.export_text(clear=False)
    final = last_panel(out)
    assert final.startswith("boxloop run run-1")
    assert "iteration 1" in final
    assert TRAIN_DETECTOR in final and "step 2m 00s" in final and "ETA 8m 00s" in final
    assert "auto-labelled 400 · human-labelled 400 · left 200" in final
    assert "1.50 h of 10.0 h (15%)" in final
    assert "t = 0.812, lower bound 0.640 (target 0.60)" in final
    assert "elapsed 2m 00s" in final


def test_live_eta_from_step_progress():
    clock, out = FakeClock(), console(terminal=True)
    with RunProgress("run-1", 3600.0, console=out, clock=clock) as progress:
        progress.update(state=RUN_POOL_INFERENCE, iteration=2)
        clock.now += 30
        progress.update(step_progress=(250, 1000))
    final = last_panel(out)
    assert "250/1,000" in final and "ETA 1m 30s" in final  # 30 s for 250 images, 750 to go
    assert "threshold not computed yet" in final


def test_plain_lines_only_on_change():
    clock, out = FakeClock(), console(terminal=False)
    with RunProgress("run-1", 3600.0, console=out, clock=clock) as progress:
        assert not progress.is_live
        progress.update(state=RUN_POOL_INFERENCE, iteration=1)
        progress.update(state=RUN_POOL_INFERENCE, iteration=1)
        clock.now += 10
        for done in range(1, 100):
            progress.update(step_progress=(done, 100))
        progress.log("a message")
        progress.update(state=COMPUTE_THRESHOLD)
        progress.update(metrics=metrics(1, auto=5, human=0, remaining=95, seconds_total=0.0, threshold=None))
    lines = out.export_text().splitlines()
    assert "\x1b" not in "".join(lines)
    inference = [line for line in lines if RUN_POOL_INFERENCE in line]
    assert len(inference) == 1 + 10  # the state, then once per 10% of the step (from 1/100 on)
    assert "(step 10s, 50/100, ETA 10s)" in inference[6]
    assert "a message" in lines
    assert COMPUTE_THRESHOLD in lines[-2]
    assert "auto 5 · human 0 · left 95" in lines[-1]


def test_bad_step_progress_is_named():
    with (
        RunProgress("run-1", 3600.0, console=console(terminal=False)) as progress,
        pytest.raises(ValueError, match=r"step_progress \(5, 3\)"),
    ):
        progress.update(step_progress=(5, 3))


def test_the_budget_can_be_replaced_by_the_one_the_run_uses():
    out = console(terminal=False)
    with RunProgress("run-1", 100 * 3600.0, console=out) as progress:
        progress.update(state=RUN_POOL_INFERENCE, iteration=0)
        progress.update(human_budget_seconds=10 * 3600.0)
        with pytest.raises(ValueError, match="human_budget_seconds 0.0 must be positive"):
            progress.update(human_budget_seconds=0.0)
    lines = out.export_text().splitlines()
    assert "human time 0.00 h of 100.0 h" in lines[0]
    assert "human time 0.00 h of 10.0 h" in lines[-1]
