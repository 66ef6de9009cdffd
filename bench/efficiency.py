"""Human hours and label quality of boxloop against a Ground Truth-style loop, an oracle and all-manual labelling,
over seeds and corpus sizes, projected to 500,000 images.

For each corpus size (``--sizes``) and seed (``--seeds``): one generated corpus (``--corpus``: ``mixed``, the
product-case mix of 40% studio shots, 40% lifestyle scenes and 20% cluttered/occluded/low-light images; ``dense``;
``retail``; see ``simulation.corpus_images``), one detector (the real training script and pool predictor at
``--image-size`` px on the CPU, step-bounded training) and one simulated workforce (``--anchoring``: share of
pre-filled errors people keep; ``--prefill-factor``: their time adjusting boxes as a share of drawing) for every
policy:

- ``all-manual``: every image boxed by people from scratch (the time model, plus QC re-asks);
- ``ground-truth-style``: 10% random initial sample at every size, point-estimate threshold, the most uncertain
  images in fixed batches, no audit slice, no gold, boxes drawn from scratch, batches sent whole;
- ``boxloop``: what ``boxloop run`` does without a configuration, but with ``--max-iterations`` trained
  iterations (``boxloop.run_plan``'s sizes for the corpus and ``--budget-hours``; lower-bound threshold at
  ``--target``; uncertain × diverse batches with pre-filled boxes; audit slice; gold; budget waves; people finish
  the rest unaided);
- ``oracle``: boxloop, but each iteration auto-labels the best images by true IoU that keep the mean at the target;
- ``boxloop-human-parity`` (only with ``--policies``): boxloop with ``quality.human_parity``.

Whatever a loop leaves unlabelled at the end is labelled by people in a final pass, so each figure is the cost of a
fully labelled corpus. Each (size, seed) run writes
``<work>/parts/<corpus>-<size>-s<seed>-a<anchoring>-f<factor>.json`` and is skipped when that file exists, so the
benchmark can run in parts; the summary reads every part of the corpus at ``--prefill-factor`` (``--summarize``
only reads). Prints Markdown tables; writes ``--json`` and ``--plot``. On 2 idle cores a part took 5–14 minutes
at 2,000 images (the dense corpus's are the longer), 6–9 at 4,000 and about 10 at 8,000 (Nov 30; training steps and
pool inference dominate, and grow with the corpus where the first model leaves work), so run one size per command,
in the background:

    .venv/bin/python bench/efficiency.py --sizes 2000 --seeds 5 --generate-size 8000 --parts-only
    .venv/bin/python bench/efficiency.py --sizes 2000 --seeds 5 --anchoring 0 --policies boxloop,oracle --parts-only
    .venv/bin/python bench/efficiency.py --summarize                 # tables, JSON and plot from the parts
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

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
from simulation.efficiency_summary import (
    PROJECTION_BUDGET_HOURS,
    PROJECTION_IMAGES,
    summarize,
    tables,
)
from simulation.loop import all_manual, run_policy
from simulation.policy import (
    Policy,
    all_manual_policy,
    boxloop_policy,
    ground_truth_initial_sample,
    ground_truth_style_policy,
    human_parity_policy,
    oracle_policy,
    with_target,
    with_workforce,
)

DEFAULT_POLICIES = ("all-manual", "ground-truth-style", "boxloop", "oracle")
POLICY_NAMES = (*DEFAULT_POLICIES, "boxloop-human-parity")

PROJECTION_METHOD = (
    "Projection: per policy and seed, from the largest size run. Measured there and held fixed: hours per "
    "initial-sample image, and hours per image of the rest of the corpus (the auto-labelled share of the "
    "post-initial pool and people's seconds per image there, re-asks, audits, gold and final pass included). "
    "Grows with the corpus: the initial sample by each policy's rule (Ground Truth-style 10% of the corpus; boxloop "
    "and oracle boxloop.run_plan's rule under the budget; all-manual none). Uncertainty: the range over seeds. "
    "The linear fit a + b·N over all sizes and seeds is shown as a check. Pre-fill sensitivity re-prices the "
    "recorded answers (same answers, pre-filled seconds × new factor ÷ run factor), exact while the budget did not "
    "bind; anchoring sensitivity compares separate runs."
)


def _list(text: str, kind: type) -> list:
    return [kind(item) for item in text.split(",") if item.strip()]


def policies_for(args, n_images: int, classes: tuple[str, ...], seed: int) -> list[Policy]:
    """The chosen policies for one corpus, with the run's target, budget, anchoring and pre-fill factor."""
    budget = {"human_budget_hours": args.budget_hours}
    ours = with_target(
        boxloop_policy(classes, args.max_iterations, seed, n_images=n_images, **budget, **args.boxloop_override),
        args.target,
    )
    built = {
        "all-manual": all_manual_policy(classes, seed),
        "ground-truth-style": with_target(
            ground_truth_style_policy(classes, n_images, args.max_iterations, seed, **budget), args.target
        ),
        "boxloop": ours,
        "oracle": oracle_policy(ours),
        "boxloop-human-parity": human_parity_policy(classes, args.max_iterations, seed),
    }
    return [with_workforce(built[name], args.anchoring, args.prefill_factor) for name in args.policies]


def part_path(args, size: int, seed: int) -> Path:
    """Where one (size, seed) run of the policies is kept."""
    return args.work / "parts" / f"{args.corpus}-{size}-s{seed}-a{args.anchoring:g}-f{args.prefill_factor:g}.json"


def part_settings(args) -> dict:
    """What a part's figures depend on besides its corpus, size, seed, anchoring and pre-fill factor (and which
    policies it ran: an anchoring run may leave out the unaided ones, which the summary takes from the main run)."""
    return {
        "target": args.target,
        "max_iterations": args.max_iterations,
        "epochs": args.epochs,
        "budget_hours": args.budget_hours,
        "detector": args.detector,
        "image_size": args.image_size,
        "boxloop_override": args.boxloop_override,
    }


def run_part(args, size: int, seed: int) -> dict:
    """Every policy on one corpus of ``size`` images for ``seed``; the part file's document."""
    images = named_corpus(args.work / "corpora", args.corpus, size, seed, args.generate_size or max(args.sizes))
    classes = corpus_classes(args.corpus)
    jobs = DetectorJobs(args.work / "jobs", detector_settings(args, epochs=args.epochs, seed=seed, classes=classes))
    truth = {image.image_id: list(image.truth) for image in images}
    results = []
    for policy in policies_for(args, size, classes, seed):
        say(f"{args.corpus} {size} seed {seed}: {policy.name}: {policy.summary}")
        workforce = SimulatedWorkforce.from_config(truth, policy.config)
        if policy.name == "all-manual":
            results.append(all_manual(images, workforce, policy))
        else:
            results.append(run_policy(policy, images, jobs, workforce, progress=say))
    kinds = sorted({image.difficulty for image in images})
    return {
        **run_header("efficiency-part"),
        "corpus": args.corpus,
        "size": size,
        "seed": seed,
        "anchoring": args.anchoring,
        "prefill_factor": args.prefill_factor,
        "settings": part_settings(args),
        "policy_names": list(args.policies),
        "kinds": {kind: sum(image.difficulty == kind for image in images) for kind in kinds},
        "policies": [r.model_dump(mode="json") for r in results],
    }


def load_parts(args) -> list[dict]:
    """Every part of ``--corpus`` at ``--prefill-factor`` under ``--work``; ValueError when one was run with other
    settings (another target, detector, …): such parts belong in another ``--work``."""
    parts = []
    for path in sorted((args.work / "parts").glob(f"{args.corpus}-*.json")):
        part = json.loads(path.read_text())
        if not math.isclose(part["prefill_factor"], args.prefill_factor):
            continue
        if part["settings"] != part_settings(args):
            raise ValueError(f"{path} was run with {part['settings']}, not {part_settings(args)}: use another --work")
        parts.append(part)
    return parts


def representative_run(parts: list[dict], anchoring: float) -> dict:
    """``corpus`` and ``policies`` of the run at the largest size and first seed (the figures ``bench/cost.py``
    prices, scaled to its own corpus size)."""
    main = [part for part in parts if math.isclose(part["anchoring"], anchoring)]
    part = max(main, key=lambda p: (p["size"], -p["seed"]))
    return {
        "corpus": {"images": part["size"], "name": part["corpus"], "seed": part["seed"], "kinds": part["kinds"]},
        "policies": part["policies"],
    }


def initial_rules(args, classes: tuple[str, ...]) -> dict:
    """Each policy's initial sample for a corpus of n images (what the projection grows)."""

    def boxloop_rule(n_images: int) -> int:
        budget = {"human_budget_hours": args.budget_hours}
        return boxloop_policy(classes, args.max_iterations, 0, n_images=n_images, **budget).config.initial_sample_size

    return {
        "all-manual": lambda n_images: 0,
        "ground-truth-style": ground_truth_initial_sample,
        "boxloop": boxloop_rule,
        "oracle": boxloop_rule,
        "boxloop-human-parity": lambda n_images: 300,
    }


def hours_figure(summary: dict, policies: list[str]) -> plt.Figure:
    """Each policy's human hours (mean, with the seeds' range as error bars): against corpus size when several sizes
    ran, as one bar per policy when one did (a trend needs two points)."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    sizes = sorted(summary["sizes"], key=int)
    one_size = len(sizes) == 1
    for index, name in enumerate(policies):
        stats = [summary["sizes"][s]["policies"][name]["human_hours"] for s in sizes]
        means = [s["mean"] for s in stats]
        errors = [
            [m - s["min"] for m, s in zip(means, stats, strict=True)],
            [s["max"] - m for m, s in zip(means, stats, strict=True)],
        ]
        if one_size:
            axis.bar(index, means, yerr=errors, capsize=4)
        else:
            axis.errorbar([int(s) for s in sizes], means, yerr=errors, marker="o", capsize=4, label=name)
    if one_size:
        axis.set_xticks(range(len(policies)), policies)
        axis.set_xlabel(f"policy, {int(sizes[0]):,} images")
    else:
        axis.set_xlabel("images in the corpus")
        axis.legend()
    axis.set_ylabel("human hours for the whole corpus")
    return figure


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__, "efficiency")
    parser.add_argument("--corpus", choices=CORPUS_NAMES, default="mixed")
    parser.add_argument("--sizes", type=lambda text: _list(text, int), default=[2000, 4000, 8000])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 … N-1 (corpus, sampling, workforce)")
    parser.add_argument(
        "--generate-size", type=int, help="generate each seed's corpus at this size (default: the largest of --sizes)"
    )
    parser.add_argument("--max-iterations", type=int, default=3, help="trained iterations per loop")
    parser.add_argument("--epochs", type=int, default=15, help="training epochs per iteration (steps follow the data)")
    parser.add_argument("--target", type=float, default=0.6, help="quality target of boxloop and Ground Truth-style")
    add_workforce_arguments(parser)
    parser.add_argument("--policies", type=lambda text: _list(text, str), default=list(DEFAULT_POLICIES))
    parser.add_argument("--boxloop-override", type=json.loads, default={}, help="JSON config fields (ablations)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--parts-only", action="store_true", help="run the missing parts, print no summary")
    mode.add_argument("--summarize", action="store_true", help="only read the parts and print the summary")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.policies) - set(POLICY_NAMES))
    if unknown:
        parser.error(f"unknown policies {unknown}; choose from {', '.join(POLICY_NAMES)}")

    if not args.summarize:
        for size in args.sizes:
            for seed in range(args.seeds):
                path = part_path(args, size, seed)
                if path.exists():
                    say(f"{path} exists: skipped")
                    continue
                write_json(path, run_part(args, size, seed))
                say(f"wrote {path}")
    if args.parts_only:
        return 0
    parts = load_parts(args)
    summary = summarize(parts, args.policies, args.anchoring, initial_rules(args, corpus_classes(args.corpus)))
    header = run_header("efficiency")
    write_json(
        args.json,
        {
            **header,
            "corpus": args.corpus,
            "prefill_factor": args.prefill_factor,
            "settings": part_settings(args),
            "projection_method": PROJECTION_METHOD,
            "projection_images": PROJECTION_IMAGES,
            "projection_budget_hours": PROJECTION_BUDGET_HOURS,
            "parts": [
                {key: part[key] for key in ("corpus", "size", "seed", "anchoring", "date", "machine", "kinds")}
                for part in parts
            ],
            "summary": summary,
            **representative_run(parts, args.anchoring),
        },
    )
    save_figure(hours_figure(summary, args.policies), args.plot)
    print(f"{header['date']} · {header['machine']} · corpus {args.corpus} · {len(parts)} parts")
    print(tables(summary, args.policies))
    print()
    print(PROJECTION_METHOD)
    print(f"results: {args.json}; plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
