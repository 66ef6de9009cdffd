"""Every corpus profile through ``boxloop run``: auto-labelled share, human hours against the budget, bound vs truth.

For each profile (``boxloop/corpus_profiles.py``) and seed, generates a corpus of ``--images`` images and runs
``boxloop run --images … --truth …`` on it as a new user would: with no labelling configuration, so the run
derives its own from the corpus (classes from the truth file), the simulated workforce answering from the truth.
Each run's ``report.json`` gives the figures; per profile the table shows the mean auto-labelled share, the
largest human hours over the seeds against the budget, and the stated lower bound on the auto-labels' mean IoU
against the mean IoU they really have (a bound above the realised value is a failure of the guarantee).

    .venv/bin/python bench/profiles.py                    # 300 images x 2 seeds x 5 profiles (hours on 2 cores)
    .venv/bin/python bench/profiles.py --quick            # 30 images, 1 seed, the tiny detector (minutes)

``--quick`` checks that the benchmark runs end to end (with a small configuration, since the defaults need a
few hundred images); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from boxloop.corpus import IMAGES_DIR, TRUTH_FILE, generate_corpus
from boxloop.corpus_profiles import PROFILE_NAMES, profile_spec
from simulation.bench_run import run_header, say, write_json

PROJECT_ROOT = Path(__file__).resolve().parents[1]
QUICK_IMAGES = 30
QUICK_CONFIG = {
    "quality": {"target_miou": 0.6, "delta": 0.05, "min_validation_images": 5},
    "human_budget_hours": 0.4,
    "initial_sample_size": 14,
    "validation_share": 0.4,
    "human_batch_size": 8,
    "audit_size": 2,
    "max_iterations": 1,
    "min_images_to_start": QUICK_IMAGES,
    "workforce": {"kind": "simulated", "batch_timeout_seconds": 600},
}
"""The labelling configuration of ``--quick`` runs (the defaults are sized for a few hundred images)."""
QUICK_TRAINING = ["--detector", "tiny", "--epochs", "5"]


def run_profile(work: Path, profile: str, n_images: int, seed: int, quick: bool) -> dict:
    """Generate the profile's corpus (once) and run ``boxloop run`` on it; returns the run's figures."""
    spec = profile_spec(profile, n_images, seed)
    corpus_dir = work / f"{profile}-{n_images}-s{seed}"
    if not (corpus_dir / TRUTH_FILE).is_file():
        generate_corpus(spec, corpus_dir)
    out_dir = work / "runs" / f"{profile}-{n_images}-s{seed}"
    command = [
        sys.executable, "-m", "boxloop.cli", "run", "--images", str(corpus_dir / IMAGES_DIR),
        "--truth", str(corpus_dir / TRUTH_FILE), "--out", str(out_dir),
    ]  # fmt: skip
    if quick:
        config_path = work / f"{profile}-quick-config.json"
        config_path.write_text(json.dumps({**QUICK_CONFIG, "classes": list(spec.class_names)}))
        command += ["--config", str(config_path), *QUICK_TRAINING]
    started = time.monotonic()
    finished = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if finished.returncode != 0:
        return {
            "profile": profile,
            "seed": seed,
            "completed": False,
            "error": (finished.stdout + finished.stderr)[-2000:],
        }
    report = json.loads((out_dir / "latest" / "report.json").read_text())
    return {
        "profile": profile,
        "seed": seed,
        "completed": True,
        "wall_seconds": round(seconds, 1),
        "images": report["images_total"],
        "auto_labelled_share": report["images_auto_labelled"] / report["images_total"],
        "unlabelled": report["images_unlabelled"],
        "human_hours": report["human_seconds"] / 3600,
        "budget_hours": report["human_budget_seconds"] / 3600,
        "stated_bound": report["auto_miou_lower_bound"],
        "realised_miou": report["auto_miou_true"],
        "statement": report["statement"],
        "learning_stopped": report["finish"]["learning_stopped"],
        "unlabelled_reason": report["finish"]["unlabelled_reason"],
        "training_safety_stops": sum(
            "safety stop:" in log.read_text(errors="replace") for log in (out_dir / "job-logs").glob("*-train.log")
        ),
    }


def summarise(runs: list[dict]) -> list[dict]:
    """Per profile: completed runs, mean auto-labelled share, max human hours over seeds vs budget, bound vs truth."""
    rows = []
    for profile in dict.fromkeys(run["profile"] for run in runs):
        done = [run for run in runs if run["profile"] == profile and run["completed"]]
        mine = [run for run in runs if run["profile"] == profile]
        bounded = [run for run in done if run["stated_bound"] is not None]
        rows.append(
            {
                "profile": profile,
                "completed": f"{len(done)}/{len(mine)}",
                "auto_labelled_share": sum(run["auto_labelled_share"] for run in done) / len(done) if done else None,
                "max_human_hours": max((run["human_hours"] for run in done), default=None),
                "budget_hours": max((run["budget_hours"] for run in done), default=None),
                "max_unlabelled": max((run["unlabelled"] for run in done), default=None),
                "bounds_holding": f"{sum(run['stated_bound'] <= run['realised_miou'] for run in bounded)}/{len(bounded)}",
                "lowest_bound": min((run["stated_bound"] for run in bounded), default=None),
                "lowest_realised": min((run["realised_miou"] for run in bounded), default=None),
            }
        )
    return rows


def _cell(value: object) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("bench-work") / "profiles", help="corpora and runs")
    parser.add_argument("--json", type=Path, default=Path("docs/benchmarks") / "profiles.json", help="results file")
    parser.add_argument("--profiles", nargs="+", choices=PROFILE_NAMES, default=list(PROFILE_NAMES))
    parser.add_argument("--images", type=int, default=300, help="images per corpus")
    parser.add_argument("--seeds", type=int, default=2, help="corpora (and runs) per profile")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_IMAGES} images, 1 seed, the tiny detector")
    args = parser.parse_args(argv)
    n_images, seeds = (QUICK_IMAGES, 1) if args.quick else (args.images, args.seeds)
    header = run_header("profiles")
    runs = []
    for profile in args.profiles:
        for seed in range(seeds):
            say(f"{profile}, seed {seed}: boxloop run on {n_images} images …")
            runs.append(run_profile(args.work, profile, n_images, seed, args.quick))
            say(f"  {'completed' if runs[-1]['completed'] else 'FAILED'}")
    rows = summarise(runs)
    columns = list(rows[0])
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(_cell(row[column]) for column in columns))
    if not args.quick:
        write_json(args.json, {**header, "images": n_images, "seeds": seeds, "summary": rows, "runs": runs})
    return 0 if all(run["completed"] for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
