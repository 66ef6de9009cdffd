"""Are boxloop's labels good enough to train on? The same detector trained on boxloop's labels and on the truth.

Runs boxloop as ``bench/efficiency.py`` does — what ``boxloop run`` does without a configuration but the
iteration cap: ``boxloop.run_plan``'s sizes for the corpus and ``--budget-hours``, the simulated workforce
(``--anchoring``, ``--prefill-factor``), ``--loop-iterations`` trained iterations, then a final human pass over
anything left — over a generated corpus (``--corpus``, by default the product-case ``mixed`` corpus of
``simulation.corpus_images``; the detector learns that corpus's classes), then trains the detector
twice with identical settings, seed and number of epochs — once on boxloop's final labels (auto and human),
once on the corpus's true boxes — and scores both on a separate held-out corpus with known truth.
Goal: mAP@0.5 (boxloop labels) / mAP@0.5 (true labels) ≥ 0.97. Prints a table, writes
``docs/benchmarks/downstream.json`` (``--json``) and a plot.

    .venv/bin/python bench/downstream.py                      # defaults: 2,000 + 400 held-out images, about 13 min
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from boxloop.quality import mean_image_miou
from boxloop.workforce import SimulatedWorkforce
from simulation.bench_run import (
    add_workforce_arguments,
    benchmark_parser,
    detector_settings,
    run_header,
    save_figure,
    say,
    write_json,
)
from simulation.corpus_images import CORPUS_NAMES, corpus_classes, named_corpus
from simulation.detector_jobs import DetectorJobs
from simulation.evaluation import HeldOutScore, labelled_images, predict_held_out, score_held_out
from simulation.loop import run_policy
from simulation.policy import boxloop_policy, with_workforce

GOAL_MAP_RATIO = 0.97
VALIDATION_CHANNEL_IMAGES = 64
"""Images of the training set echoed as the job's validation channel (it only reports metrics)."""


def plot(scores: dict[str, HeldOutScore], path: Path) -> None:
    """Held-out mAP@0.5, mAP@[.5:.95] and mean image IoU of the two detectors."""
    metrics = ("map50", "map50_95", "miou")
    figure, axis = plt.subplots(figsize=(6.5, 3.8))
    width = 0.38
    for offset, (name, score) in enumerate(scores.items()):
        values = [getattr(score, metric) for metric in metrics]
        bars = axis.bar([i + offset * width for i in range(len(metrics))], values, width, label=name)
        axis.bar_label(bars, fmt="%.3f", fontsize=8)
    axis.set_xticks([i + width / 2 for i in range(len(metrics))], ["mAP@0.5", "mAP@[.5:.95]", "mean image IoU"])
    axis.set_ylim(0, 1.08)
    axis.set_ylabel("held-out score")
    axis.legend(loc="lower right")
    save_figure(figure, path)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__, "downstream")
    parser.add_argument("--images", type=int, default=2000, help="corpus labelled by boxloop, then trained on")
    parser.add_argument("--held-out", type=int, default=400, help="held-out corpus with known truth")
    parser.add_argument("--corpus", choices=CORPUS_NAMES, default="mixed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held-out-seed", type=int, default=77)
    parser.add_argument("--loop-iterations", type=int, default=3, help="trained iterations of the loop")
    parser.add_argument("--loop-epochs", type=int, default=15, help="training epochs per loop iteration")
    add_workforce_arguments(parser)
    parser.add_argument("--epochs", type=int, default=8, help="training budget of each compared detector")
    args = parser.parse_args(argv)
    header = run_header("downstream")
    classes = corpus_classes(args.corpus)
    images = named_corpus(args.work / "corpora", args.corpus, args.images, args.seed)
    held_out = named_corpus(args.work / "corpora", args.corpus, args.held_out, args.held_out_seed)
    policy = with_workforce(
        boxloop_policy(
            classes, args.loop_iterations, args.seed, n_images=len(images), human_budget_hours=args.budget_hours
        ),
        args.anchoring,
        args.prefill_factor,
    )
    workforce = SimulatedWorkforce.from_config({i.image_id: list(i.truth) for i in images}, policy.config)
    loop_jobs = DetectorJobs(
        args.work / "loop",
        detector_settings(args, epochs=args.loop_epochs, seed=args.seed, classes=classes),
    )
    say(f"labelling {len(images)} images with boxloop")
    labelled = run_policy(policy, images, loop_jobs, workforce, progress=say)
    truth = {image.image_id: list(image.truth) for image in images}
    label_quality = mean_image_miou((labelled.labels[i], truth[i]) for i in truth)

    final_jobs = DetectorJobs(
        args.work / "final",
        detector_settings(args, epochs=args.epochs, seed=args.seed, classes=classes),
    )
    echo = images[:VALIDATION_CHANNEL_IMAGES]
    reference = labelled_images(held_out)
    scores: dict[str, HeldOutScore] = {}
    seconds: dict[str, float] = {}
    for name, labels in (("boxloop labels", labelled.labels), ("true labels", truth)):
        say(f"training on {name}: {args.epochs} epochs over {len(images)} images")
        model = final_jobs.train(images, echo, labels, warm_start=None)
        seconds[name] = model.seconds
        scores[name] = score_held_out(
            predict_held_out(model.model_dir, reference, args.threads), reference, len(classes)
        )
    reference_map = scores["true labels"].map50
    ratio = scores["boxloop labels"].map50 / reference_map if reference_map > 0 else None
    if ratio is None:
        verdict = (
            f"goal (mAP@0.5 ratio ≥ {GOAL_MAP_RATIO}): NOT MEASURED — the detector trained on true labels scored 0"
        )
    else:
        met = ratio >= GOAL_MAP_RATIO
        verdict = f"goal (mAP@0.5 ratio ≥ {GOAL_MAP_RATIO}): {'MET' if met else 'MISSED'} — ratio {ratio:.3f}"
    write_json(
        args.json,
        {
            **header,
            "settings": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
            "loop": {
                "classes": list(classes),
                "initial_sample_size": policy.config.initial_sample_size,
                "validation_share": policy.config.validation_share,
                "human_batch_size": policy.config.human_batch_size,
            },
            "labelling": labelled.model_dump(mode="json") | {"label_miou_vs_truth": label_quality},
            "training_seconds": seconds,
            "held_out": {name: score.model_dump() for name, score in scores.items()},
            "map50_ratio": ratio,
            "verdict": verdict,
        },
    )
    plot(scores, args.plot)
    print(f"{header['date']} · {header['machine']}")
    print(
        f"boxloop labelled {len(images):,} images: {labelled.auto_images:,} auto ({100 * labelled.auto_share:.1f}%), "
        f"{labelled.human_images:,} by people ({labelled.human_hours:.2f} h); all labels' mean IoU vs truth {label_quality:.3f}"
    )
    print("| trained on | held-out mAP@0.5 | mAP@[.5:.95] | mean image IoU | training seconds |")
    print("|---|---:|---:|---:|---:|")
    for name, score in scores.items():
        print(f"| {name} | {score.map50:.3f} | {score.map50_95:.3f} | {score.miou:.3f} | {seconds[name]:.0f} |")
    print(verdict)
    print(f"results: {args.json}; plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
