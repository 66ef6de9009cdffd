"""Does the stated guarantee hold? Seeded runs: how often realised auto-label quality falls below the target.

Each run generates its own small corpus (``--corpus``, by default the product-case ``mixed`` corpus of
``simulation.corpus_images``; seed ``--first-seed + i``), labels boxloop's random initial
sample with the simulated workforce, splits it into training and validation images as the loop does,
trains the detector on the training part and infers the rest of the pool and the validation images —
one iteration of the loop. Then, for each ``--targets`` value, it chooses the threshold from the same
validation images two ways:

- ``lower-bound`` (boxloop): the lowest threshold whose 95% lower confidence bound (the configured
  ``quality.bound``, betting by default) of validation mean IoU is ≥ the target (fixed-sequence test);
- ``point-estimate`` (Ground Truth's rule): the lowest threshold whose validation *mean* IoU is ≥ the target;

auto-labels the pool images at or above it and measures their mean IoU against the known truth. A run
*abstains* at a target when its rule auto-labels nothing, and *fails* when it auto-labelled something whose
realised mean IoU is below the target. Abstaining runs are counted apart: a target's failure share and verdict
are over the runs that auto-labelled, and a target at which every run abstained gets no verdict. The goal is a
failure share ≤ δ = 0.05 for the lower bound at every target with a verdict. Prints a table, writes ``docs/benchmarks/guarantee.json`` (``--json``) and a plot.

    .venv/bin/python bench/guarantee.py                       # defaults: 20 runs of 500 images, about 25 min
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from boxloop.quality import image_miou
from boxloop.selection import routing_confidence
from boxloop.threshold_step import measure_validation
from boxloop.workforce import SimulatedWorkforce
from simulation.bench_run import (
    benchmark_parser,
    detector_settings,
    run_header,
    save_figure,
    say,
    write_json,
)
from simulation.corpus_images import CORPUS_NAMES, corpus_classes, named_corpus
from simulation.detector_jobs import DetectorJobs
from simulation.loop import Humans, RunState, label_initial_sample, plain_boxes
from simulation.policy import Thresholding, boxloop_policy, threshold_rule

RULES = (Thresholding.LOWER_BOUND, Thresholding.POINT_ESTIMATE)
"""The two threshold rules compared (the oracle knows the truth and chooses no threshold)."""


def one_run(seed: int, args: argparse.Namespace) -> dict:
    """One seeded iteration: every target × thresholding rule with its threshold, auto count and realised mIoU."""
    images = named_corpus(args.work / "corpora", args.corpus, args.images, seed)
    classes = corpus_classes(args.corpus)
    policy = boxloop_policy(classes, max_iterations=1, seed=seed)
    policy = policy.model_copy(
        update={"config": policy.config.model_copy(update={"initial_sample_size": args.initial})}
    )
    state = RunState()
    workforce = SimulatedWorkforce.from_config({i.image_id: list(i.truth) for i in images}, policy.config)
    label_initial_sample(images, policy, Humans(workforce, policy, state))
    by_id = {image.image_id: image for image in images}
    train = [by_id[image_id] for image_id in state.labels]
    validation = [by_id[image_id] for image_id in state.validation]
    pool = state.unlabelled(images)
    jobs = DetectorJobs(
        args.work / f"jobs-s{seed}",
        detector_settings(args, epochs=args.epochs, seed=seed, classes=classes),
    )
    labels = {image_id: a.boxes for image_id, a in state.labels.items()} | state.validation
    model = jobs.train(train, validation, labels, warm_start=None)
    predictions, _, _ = jobs.infer(model, pool + validation)
    measured = measure_validation((predictions[image_id] for image_id in state.validation), state.validation)
    confidences, qualities = measured.confidences, measured.qualities
    pool_confidence = np.array([routing_confidence(predictions[i.image_id]) for i in pool])
    pool_quality = np.array([image_miou(plain_boxes(predictions[i.image_id]), i.truth) for i in pool])
    outcomes = []
    for target in args.targets:
        for rule in RULES:
            decision = threshold_rule(rule, policy.config.quality)(confidences, qualities, target)
            auto = (
                pool_confidence >= decision.threshold if decision.threshold is not None else np.zeros(len(pool), bool)
            )
            realised = float(pool_quality[auto].mean()) if auto.any() else None
            outcomes.append(
                {
                    "target": target,
                    "rule": rule.value,
                    "threshold": decision.threshold,
                    "lower_bound": decision.lower_bound,
                    "auto_images": int(auto.sum()),
                    "realised_miou": realised,
                    "failed": realised is not None and realised < target,
                }
            )
    return {
        "seed": seed,
        "pool_images": len(pool),
        "validation_images": len(state.validation),
        "training_images": len(train),
        "validation_miou": float(np.mean(qualities)),
        "pool_miou": float(pool_quality.mean()),
        "outcomes": outcomes,
    }


def summary(runs: list[dict], targets: list[float]) -> list[dict]:
    """Per target and rule: runs, abstentions, runs that auto-labelled, their failures and failure share (None when
    every run abstained), mean auto share over all runs and mean realised mIoU over those that auto-labelled."""
    rows = []
    for target in targets:
        for rule in RULES:
            picked = [
                o | {"pool": r["pool_images"]}
                for r in runs
                for o in r["outcomes"]
                if o["target"] == target and o["rule"] == rule.value
            ]
            labelled = [o for o in picked if o["realised_miou"] is not None]
            failures = sum(o["failed"] for o in labelled)
            rows.append(
                {
                    "target": target,
                    "rule": rule.value,
                    "runs": len(picked),
                    "runs_abstaining": len(picked) - len(labelled),
                    "runs_auto_labelling": len(labelled),
                    "failures": failures,
                    "failure_share": failures / len(labelled) if labelled else None,
                    "mean_auto_share": float(np.mean([o["auto_images"] / o["pool"] for o in picked])),
                    "mean_realised_miou": float(np.mean([o["realised_miou"] for o in labelled])) if labelled else None,
                }
            )
    return rows


def _share(row: dict, delta: float) -> str:
    if row["failure_share"] is None:
        return "no verdict (every run abstained)"
    return f"{row['failure_share']:.2f} {'(≤ δ)' if row['failure_share'] <= delta else '(> δ)'}"


def table(rows: list[dict], delta: float) -> str:
    """The summary as a Markdown table: abstaining runs apart, the failure share over the runs that auto-labelled."""
    lines = [
        "| target | rule | runs | abstained | auto-labelled | failures | failure share (of those that auto-labelled) "
        "| mean auto share | mean realised mIoU |",
        "|---:|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for row in rows:
        realised = "–" if row["mean_realised_miou"] is None else f"{row['mean_realised_miou']:.3f}"
        lines.append(
            f"| {row['target']:.2f} | {row['rule']} | {row['runs']} | {row['runs_abstaining']} "
            f"| {row['runs_auto_labelling']} | {row['failures']} | {_share(row, delta)} "
            f"| {100 * row['mean_auto_share']:.1f}% | {realised} |"
        )
    return "\n".join(lines)


def verdict(rows: list[dict], delta: float) -> str:
    """The goal line, judged only at targets where some lower-bound run auto-labelled."""
    judged = [r for r in rows if r["rule"] == Thresholding.LOWER_BOUND.value and r["failure_share"] is not None]
    abstained = [f"{r['target']:.2f}" for r in rows if r["rule"] == Thresholding.LOWER_BOUND.value and r not in judged]
    note = f"; no verdict at target {', '.join(abstained)} (every run abstained)" if abstained else ""
    if not judged:
        return f"goal (lower-bound failure share ≤ δ = {delta:g}): NO VERDICT — every run abstained at every target"
    worst = max(judged, key=lambda r: r["failure_share"])
    met = worst["failure_share"] <= delta
    return (
        f"goal (lower-bound failure share ≤ δ = {delta:g} among runs that auto-labelled): {'MET' if met else 'MISSED'}"
        f" — worst {worst['failure_share']:.2f} at target {worst['target']:.2f} "
        f"({worst['failures']} of {worst['runs_auto_labelling']}){note}"
    )


def plot(runs: list[dict], targets: list[float], path: Path) -> None:
    """Realised auto-label mIoU per run against each target, lower bound vs point estimate."""
    figure, axes = plt.subplots(1, len(targets), figsize=(4 * len(targets), 3.6), squeeze=False)
    for axis, target in zip(axes[0], targets, strict=True):
        for offset, (rule, colour) in enumerate(
            ((Thresholding.LOWER_BOUND, "#4c72b0"), (Thresholding.POINT_ESTIMATE, "#dd8452"))
        ):
            values = [
                o["realised_miou"]
                for r in runs
                for o in r["outcomes"]
                if o["target"] == target and o["rule"] == rule.value and o["realised_miou"] is not None
            ]
            jitter = np.linspace(-0.15, 0.15, len(values)) if values else []
            axis.scatter(np.full(len(values), offset) + jitter, values, s=14, color=colour, label=rule.value)
        axis.axhline(target, linestyle="--", color="grey")
        axis.set_xticks([0, 1], ["lower bound", "point est."])
        axis.set_title(f"target {target:.2f}")
        axis.set_ylabel("realised auto-label mIoU")
    save_figure(figure, path)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__, "guarantee")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--images", type=int, default=500, help="corpus size per run")
    parser.add_argument("--initial", type=int, default=250, help="random initial sample (validation share 0.4)")
    parser.add_argument("--corpus", choices=CORPUS_NAMES, default="mixed")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.6, 0.7, 0.8])
    parser.add_argument("--epochs", type=int, default=12, help="training epochs (steps follow the data, not the clock)")
    args = parser.parse_args(argv)
    header = run_header("guarantee")
    delta = boxloop_policy(corpus_classes(args.corpus), 1).config.quality.delta
    runs = []
    for index in range(args.runs):
        started = time.monotonic()
        runs.append(one_run(args.first_seed + index, args))
        say(
            f"run {index + 1}/{args.runs} (seed {args.first_seed + index}): pool mIoU {runs[-1]['pool_miou']:.3f}, "
            f"{time.monotonic() - started:.0f} s"
        )
    rows = summary(runs, args.targets)
    write_json(
        args.json,
        {
            **header,
            "delta": delta,
            "settings": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
            "summary": rows,
            "runs": runs,
        },
    )
    plot(runs, args.targets, args.plot)
    print(f"{header['date']} · {header['machine']}")
    print(table(rows, delta))
    print(verdict(rows, delta))
    print(f"results: {args.json}; plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
