"""The guarantee benchmark's summary: abstaining runs are counted apart and never as runs that held."""

from __future__ import annotations

from guarantee import summary, table, verdict


def _run(seed: int, outcomes: list[tuple[float, str, float | None]]) -> dict:
    return {
        "seed": seed,
        "pool_images": 100,
        "outcomes": [
            {
                "target": target,
                "rule": rule,
                "auto_images": 0 if realised is None else 50,
                "realised_miou": realised,
                "failed": realised is not None and realised < target,
            }
            for target, rule, realised in outcomes
        ],
    }


RUNS = [
    _run(1, [(0.6, "lower-bound", 0.7), (0.6, "point-estimate", 0.58), (0.8, "lower-bound", None), (0.8, "point-estimate", None)]),
    _run(2, [(0.6, "lower-bound", None), (0.6, "point-estimate", 0.65), (0.8, "lower-bound", None), (0.8, "point-estimate", 0.79)]),
    _run(3, [(0.6, "lower-bound", 0.66), (0.6, "point-estimate", 0.61), (0.8, "lower-bound", None), (0.8, "point-estimate", None)]),
]  # fmt: skip


def test_failure_share_is_over_the_runs_that_auto_labelled() -> None:
    rows = {(row["target"], row["rule"]): row for row in summary(RUNS, [0.6, 0.8])}
    bound = rows[(0.6, "lower-bound")]
    assert (bound["runs"], bound["runs_abstaining"], bound["runs_auto_labelling"]) == (3, 1, 2)
    assert bound["failures"] == 0 and bound["failure_share"] == 0.0
    point = rows[(0.6, "point-estimate")]
    assert point["failures"] == 1 and point["failure_share"] == 1 / 3
    assert rows[(0.8, "point-estimate")]["failure_share"] == 1.0  # one run auto-labelled, and it fell short


def test_a_target_where_every_run_abstained_gets_no_verdict() -> None:
    rows = summary(RUNS, [0.6, 0.8])
    abstained = next(row for row in rows if row["target"] == 0.8 and row["rule"] == "lower-bound")
    assert abstained["failure_share"] is None and abstained["runs_abstaining"] == 3
    assert "no verdict (every run abstained)" in table(rows, 0.05)
    line = verdict(rows, 0.05)
    assert line.startswith("goal") and "MET" in line and "no verdict at target 0.80" in line


def test_no_verdict_at_all_when_every_run_abstained_everywhere() -> None:
    runs = [_run(1, [(0.9, "lower-bound", None), (0.9, "point-estimate", None)])]
    assert "NO VERDICT" in verdict(summary(runs, [0.9]), 0.05)
