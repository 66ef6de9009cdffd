"""``bench/profiles.py``'s summary: shares averaged, hours maximised over seeds, bounds checked against the truth."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "profiles.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_profiles", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_profiles"] = module
    spec.loader.exec_module(module)
    return module


def _run(profile: str, seed: int, share: float, hours: float, bound: float | None, realised: float | None) -> dict:
    return {
        "profile": profile, "seed": seed, "completed": True, "auto_labelled_share": share, "unlabelled": seed,
        "human_hours": hours, "budget_hours": 3.5, "stated_bound": bound, "realised_miou": realised,
    }  # fmt: skip


def test_summary_per_profile() -> None:
    profiles = _load()
    runs = [
        _run("dense", 0, 0.2, 3.1, 0.61, 0.70),
        _run("dense", 1, 0.4, 3.4, 0.65, 0.62),
        _run("retail", 0, 0.0, 2.0, None, None),
        {"profile": "retail", "seed": 1, "completed": False, "error": "boom"},
    ]
    dense, retail = profiles.summarise(runs)
    assert dense["completed"] == "2/2" and dense["auto_labelled_share"] == pytest.approx(0.3)
    assert dense["max_human_hours"] == 3.4 and dense["max_unlabelled"] == 1
    assert dense["bounds_holding"] == "1/2" and dense["lowest_bound"] == 0.61 and dense["lowest_realised"] == 0.62
    assert retail["completed"] == "1/2" and retail["bounds_holding"] == "0/0" and retail["lowest_bound"] is None
