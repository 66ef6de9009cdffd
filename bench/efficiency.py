"""Human hours and label quality of boxloop against a Ground Truth-style loop and all-manual labelling.

One generated corpus (default 4,000 images, half easy), the same detector (the real training script and
pool predictor, at ``--image-size`` px on the CPU) and the same simulated workforce for every policy:

- ``all-manual``: every image boxed by people from scratch (the time model, plus QC re-asks);
- ``ground-truth-style``: 10% random initial sample, point-estimate threshold, the most uncertain images
  in fixed batches, no audit slice, no gold, boxes drawn from scratch;
- ``boxloop``: the loop's default configuration (lower-bound threshold at target 0.60, δ = 0.05,
  uncertain × diverse batches with pre-filled boxes, audit slice, gold images);
- ``boxloop-human-parity``: boxloop with ``quality.human_parity``.

Every loop gets the same iteration cap and training time per iteration; what a loop leaves unlabelled at
the end is labelled by people in a final pass, so each figure is the cost of a fully labelled corpus.
Prints a table, writes ``docs/benchmarks/efficiency.json`` (``--json``) and a plot.

    .venv/bin/python bench/efficiency.py                      # defaults: 4,000 images, about 25 min
    .venv/bin/python bench/efficiency.py --images 1000 --max-iterations 2 --epochs 6
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from boxloop.corpus import CorpusSpec
from boxloop.workforce import SimulatedWorkforce
from simulation.bench_run import (
    CLASSES,
    benchmark_parser,
    detector_settings,
    run_header,
    save_figure,
    say,
    write_json,
)
from simulation.corpus_images import corpus_images
from simulation.detector_jobs import DetectorJobs
from simulation.loop import PolicyResult, all_manual, run_policy
from simulation.policy import (
    all_manual_policy,
    boxloop_policy,
    ground_truth_style_policy,
    human_parity_policy,
    with_target,
)

GOAL_HOURS_RATIO = 0.5
"""boxloop's human hours ≤ this × the Ground Truth-style policy's, at equal or better auto-label quality."""


def _figure(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(results: list[PolicyResult]) -> str:
    """The figures as a Markdown table."""
    rows = [
        "| policy | human hours | human images | auto-labelled | auto-label mIoU | human-label mIoU "
        "| trained iterations | final pass | stop |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        rows.append(
            f"| {r.name} | {r.human_hours:.2f} | {r.human_images:,} | {r.auto_images:,} ({100 * r.auto_share:.1f}%) "
            f"| {_figure(r.auto_miou)} | {_figure(r.human_miou)} | {r.trained_iterations} | {r.final_pass_images:,} "
            f"| {r.stop_reason} |"
        )
    return "\n".join(rows)


def verdict(results: dict[str, PolicyResult]) -> str:
    """The goal line: met or missed, with the measured ratio and qualities."""
    ours, theirs = results["boxloop"], results["ground-truth-style"]
    ratio = ours.human_hours / theirs.human_hours
    quality_ok = (ours.auto_miou or 0.0) >= (theirs.auto_miou or 0.0) or theirs.auto_images == 0
    met = ratio <= GOAL_HOURS_RATIO and quality_ok
    return (
        f"goal (boxloop hours ≤ {GOAL_HOURS_RATIO} × Ground Truth-style, auto-label mIoU ≥ theirs): "
        f"{'MET' if met else 'MISSED'} — hours ratio {ratio:.2f}, auto-label mIoU {_figure(ours.auto_miou)} "
        f"vs {_figure(theirs.auto_miou)}"
    )


def plot(results: list[PolicyResult], target: float, path: Path) -> None:
    """Human hours and auto-label quality per policy, side by side."""
    names = [r.name for r in results]
    figure, (hours_axis, quality_axis) = plt.subplots(1, 2, figsize=(11, 4))
    hours_axis.bar(names, [r.human_hours for r in results], color="#4c72b0")
    hours_axis.set_ylabel("human hours for the whole corpus")
    hours_axis.tick_params(axis="x", rotation=20)
    for index, r in enumerate(results):
        hours_axis.annotate(f"{r.human_hours:.1f} h", (index, r.human_hours), ha="center", va="bottom")
    quality = [r.auto_miou or 0.0 for r in results]
    quality_axis.bar(names, quality, color="#55a868", label="auto-labels")
    quality_axis.plot(names, [r.human_miou or 0.0 for r in results], "o", color="#c44e52", label="human labels")
    quality_axis.axhline(target, linestyle="--", color="grey", label=f"target {target:.2f}")
    quality_axis.set_ylim(0, 1)
    quality_axis.set_ylabel("realised mean image IoU vs truth")
    quality_axis.tick_params(axis="x", rotation=20)
    quality_axis.legend(loc="lower right")
    save_figure(figure, path)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__, "efficiency")
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--easy-share", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0, help="corpus, sampling and workforce seed")
    parser.add_argument("--max-iterations", type=int, default=3, help="trained iterations per loop")
    parser.add_argument("--epochs", type=int, default=15, help="training epochs per iteration (steps follow the data)")
    parser.add_argument("--target", type=float, default=0.6, help="quality target of boxloop and Ground Truth-style")
    args = parser.parse_args(argv)

    header = run_header("efficiency")
    spec = CorpusSpec(n_images=args.images, easy_share=args.easy_share, seed=args.seed)
    images = corpus_images(args.work / f"corpus-{args.images}-e{args.easy_share:g}-s{args.seed}", spec)
    settings = detector_settings(args, epochs=args.epochs, seed=args.seed)
    jobs = DetectorJobs(args.work, settings)
    policies = [
        all_manual_policy(CLASSES, args.seed),
        with_target(boxloop_policy(CLASSES, args.max_iterations, args.seed), args.target),
        human_parity_policy(CLASSES, args.max_iterations, args.seed),
        with_target(ground_truth_style_policy(CLASSES, len(images), args.max_iterations, args.seed), args.target),
    ]
    results: list[PolicyResult] = []
    for policy in policies:
        workforce = SimulatedWorkforce.from_config({i.image_id: list(i.truth) for i in images}, policy.config)
        say(f"running {policy.name}: {policy.summary}")
        if policy.name == "all-manual":
            results.append(all_manual(images, workforce, policy))
        else:
            results.append(run_policy(policy, images, jobs, workforce, progress=say))
    by_name = {r.name: r for r in results}
    document = {
        **header,
        "corpus": {
            "images": len(images),
            "easy_share": args.easy_share,
            "seed": args.seed,
            "image_size": spec.image_size,
        },
        "detector": {
            "model": settings.model,
            "image_size": settings.image_size,
            "epochs_per_iteration": settings.epochs,
            "device": "cpu",
            "threads": settings.threads,
        },
        "max_trained_iterations": args.max_iterations,
        "target": args.target,
        "verdict": verdict(by_name),
        "policies": [r.model_dump(mode="json") for r in results],
    }
    write_json(args.json, document)
    plot(results, policies[1].config.quality.target_miou, args.plot)
    print(f"{header['date']} · {header['machine']}")
    print(table(results))
    print(verdict(by_name))
    for r in results:
        for it in r.iterations:
            print(f"  {r.name} iteration {it.iteration}: {it.statement}")
    print(f"results: {args.json}; plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
