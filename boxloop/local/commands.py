"""``boxloop demo`` and ``boxloop run``: the local run from the command line (docs/local-run.md).

``demo`` generates a synthetic corpus and runs the loop on it with ``demo_config.json``;
``run`` runs the same loop on any folder of images: people label in the browser (the local
labelling app), or, with a COCO truth file, the simulated workforce answers from it. Both leave their outputs in ``<out>/<run-id>/`` and point ``<out>/latest`` at it.
The embedded AWS (moto, CDK, the Lambda handlers) is imported only when a run starts, so
building the ``boxloop`` parser stays cheap.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources as package_resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from boxloop.config import ConfigError, parse_config
from boxloop.corpus import IMAGES_DIR, TRUTH_FILE, CorpusError, CorpusSpec, generate_corpus, load_truth
from boxloop.run_plan import derived_fields, describe_plan

if TYPE_CHECKING:
    from boxloop.local.run import RunResult

DEMO_CONFIG = "demo_config.json"
DEMO_IMAGES = 1500
DEMO_IMAGE_SIZE = 256
DEMO_EASY_SHARE = 0.5
DETECTORS = ("centernet-effnet-lite0", "tiny")
DEFAULT_EPOCHS = 6
"""Epochs per training job locally (the stack's ``training_epochs``): the demo's first detector trains the floor's
100 steps (``DEFAULT_MIN_STEPS``; 6 epochs of its 180 training images would be 66) and its second, warm-started,
126 (6 epochs of 336), at about 2.1-2.5 s per step of the default detector on 2 cores."""
DEFAULT_MIN_STEPS = 100
"""Steps per training job at least locally (the stack's ``training_min_steps``): a corpus of a few hundred images
trains only a few dozen steps in 7 epochs, too few to learn from (docs/benchmarks.md, "Corpus profiles")."""
DEFAULT_TRAIN_SECONDS = 1800
DEFAULT_APP_PORT = 8765
DEFAULT_CLASSES = ("object",)
"""The training jobs' safety stop locally (the stack's ``training_max_seconds``, at least 60); a job that hits it is
reported, since its model then depends on the machine's speed."""
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def demo_config() -> dict[str, Any]:
    """The demo's labelling configuration (``boxloop/local/demo_config.json``)."""
    return json.loads(package_resources.files("boxloop.local").joinpath(DEMO_CONFIG).read_text(encoding="utf-8"))


def config_from_truth(truth_path: Path) -> dict[str, Any]:
    """The demo configuration with the truth file's category names (in category-id order) as classes."""
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    categories = sorted(truth.get("categories", []), key=lambda category: category["id"])
    if not categories:
        raise CorpusError(f"{truth_path}: no categories, so no classes to label (pass --config)")
    return {**demo_config(), "classes": [category["name"] for category in categories]}


def stack_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The stack settings a local run overrides: the detector, its epochs and least steps per job, the safety stop."""
    return {
        "training_model": args.detector,
        "training_epochs": args.epochs,
        "training_min_steps": args.min_steps,
        "training_max_seconds": args.train_seconds,
    }


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--detector", choices=DETECTORS, default=DETECTORS[0],
        help="detector architecture (default centernet-effnet-lite0; tiny is a small random-init one for tests)",
    )  # fmt: skip
    parser.add_argument(
        "--epochs", type=int, default=DEFAULT_EPOCHS, metavar="E",
        help=f"training epochs per iteration: the steps follow the data, not the machine (default {DEFAULT_EPOCHS})",
    )  # fmt: skip
    parser.add_argument(
        "--min-steps", type=int, default=DEFAULT_MIN_STEPS, metavar="N",
        help=f"training steps per iteration at least, however small the corpus (default {DEFAULT_MIN_STEPS})",
    )  # fmt: skip
    parser.add_argument(
        "--train-seconds", type=int, default=DEFAULT_TRAIN_SECONDS, metavar="S",
        help=f"safety stop of each training job, at least 60; a hit is reported (default {DEFAULT_TRAIN_SECONDS})",
    )  # fmt: skip


def _summary(console: Console, result: RunResult) -> None:
    report = result.report
    bound = (
        "none (nothing auto-labelled)"
        if report.auto_miou_lower_bound is None
        else f"{report.auto_miou_lower_bound:.3f}"
    )
    console.print(
        f"\nrun {result.run_id} finished in {result.elapsed_seconds / 60:.1f} min: "
        f"{report.images_auto_labelled:,} auto-labelled, {report.images_human_labelled:,} human-labelled, "
        f"{report.images_unlabelled:,} left; human time {report.human_seconds / 3600:.2f} h of "
        f"{report.human_budget_seconds / 3600:.2f} h; auto-label mean IoU lower bound {bound}"
        + ("" if report.auto_miou_true is None else f", realised {report.auto_miou_true:.3f}")
    )
    console.print(report.statement, markup=False)
    if result.quarantined:
        console.print(f"{len(result.quarantined)} upload(s) quarantined; reasons in {result.run_dir / 'quarantine'}")
    console.print(f"outputs: {result.run_dir} (also {result.run_dir.parent / 'latest'}); open report.html in a browser")


def _execute(console: Console, run: Any) -> int:
    from boxloop.local.run import LocalRunError
    from boxloop.local.snapshot import SnapshotError

    try:
        result = run()
    except KeyboardInterrupt:
        console.print("\ninterrupted: continue from the last published version with --resume")
        return EXIT_INTERRUPTED
    except (LocalRunError, SnapshotError) as exc:
        console.print(f"boxloop: {exc}", markup=False)
        return EXIT_FAILED
    _summary(console, result)
    return EXIT_OK


def _run_demo(args: argparse.Namespace) -> int:
    console = Console()
    out_dir = Path(args.out)
    corpus_dir = out_dir / f"demo-corpus-{args.images}-s{args.seed}"
    if not (corpus_dir / TRUTH_FILE).is_file():
        spec = CorpusSpec(n_images=args.images, image_size=DEMO_IMAGE_SIZE, easy_share=DEMO_EASY_SHARE, seed=args.seed)
        console.print(f"generating {args.images:,} synthetic images ({DEMO_EASY_SHARE:.0%} easy) in {corpus_dir} …")
        generate_corpus(spec, corpus_dir, show_progress=True)
    else:
        console.print(f"using the corpus already in {corpus_dir}")
    config_bytes = json.dumps(demo_config()).encode()
    from boxloop.local.run import run_locally

    return _execute(
        console,
        lambda: run_locally(
            corpus_dir / IMAGES_DIR, corpus_dir / TRUTH_FILE, config_bytes, out_dir,
            stack_settings=stack_settings(args), console=console,
        ),
    )  # fmt: skip


def folder_config(args: argparse.Namespace, workforce: str) -> bytes:
    """The run's labelling configuration: ``--config``, else the demo's with the classes of ``--classes``, of the
    truth file, or ``object`` (people get the workforce defaults, not the simulated one's); its ``workforce.kind``
    is the local ``workforce``."""
    if args.config:
        config = json.loads(Path(args.config).read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ConfigError(f"{args.config} must hold a JSON object")
    elif args.classes:
        config = {**demo_config(), "classes": [name.strip() for name in args.classes.split(",")]}
    elif args.truth:
        config = config_from_truth(Path(args.truth))
    else:
        config = {**demo_config(), "classes": list(DEFAULT_CLASSES)}
    settings = (
        config.get("workforce", {}) if args.config or workforce == "simulated" else {}
    )  # the demo's are simulated
    config["workforce"] = {**settings, "kind": workforce}
    if args.budget_hours is not None:
        config["human_budget_hours"] = args.budget_hours
    images = Path(args.images)
    if not args.config and images.is_dir():  # sizes that fit the corpus and the budget (boxloop/run_plan.py)
        from boxloop.local.human_workforce import image_files

        # the configuration is uploaded after every image is ingested, so the run starts with all valid ones
        config["min_images_to_start"] = 1

        n_images = len(image_files(images))
        if n_images:  # none: the run stops before any work, for too few images
            config.update(derived_fields(n_images, parse_config(json.dumps(config))))
    raw = json.dumps(config).encode()
    parse_config(raw)
    return raw


def _run_folder(args: argparse.Namespace) -> int:
    workforce = args.workforce or ("simulated" if args.truth else "browser")
    if workforce == "simulated" and args.truth is None:
        print("boxloop run: the simulated workforce labels from known truth: give --truth COCO.json", file=sys.stderr)
        return EXIT_USAGE
    images_dir, out_dir = Path(args.images), Path(args.out)
    truth_path = Path(args.truth) if args.truth else None
    if not images_dir.is_dir():
        print(f"boxloop run: --images {images_dir} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    console = Console()
    app_address = (args.host, args.port)
    from boxloop.local.run import resume_locally, run_locally

    if args.resume:
        return _execute(
            console, lambda: resume_locally(out_dir, images_dir, truth_path, app_address=app_address, console=console)
        )
    try:
        if truth_path is not None:
            load_truth(truth_path)
        raw = folder_config(args, workforce)
    except (OSError, ValueError, CorpusError, ConfigError) as exc:
        print(f"boxloop run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if workforce == "browser" and not (args.config or args.classes or args.truth):
        console.print(f"labelling the class {DEFAULT_CLASSES[0]!r}; name yours with --classes NAME,NAME or --config")
    from boxloop.local.human_workforce import image_files

    n_images = len(image_files(images_dir))
    if n_images:
        for line in describe_plan(n_images, parse_config(raw)).lines():
            console.print(line)
    return _execute(
        console,
        lambda: run_locally(
            images_dir, truth_path, raw, out_dir, stack_settings=stack_settings(args), workforce=workforce,
            app_address=app_address, console=console,
        ),
    )  # fmt: skip


def add_demo_command(subparsers: argparse._SubParsersAction) -> None:
    """``boxloop demo``: a synthetic corpus through the whole loop on the embedded AWS."""
    parser = subparsers.add_parser(
        "demo",
        help="run the whole loop locally on a generated corpus",
        description="Generate a synthetic corpus, then run the labelling loop on the embedded AWS with a simulated "
        "workforce; outputs go to OUT/<run-id>/ and OUT/latest.",
    )
    parser.add_argument(
        "--images", type=int, default=DEMO_IMAGES, metavar="N", help=f"corpus size (default {DEMO_IMAGES})"
    )
    parser.add_argument("--out", default="out", metavar="DIR", help="output folder (default out)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="corpus seed (default 0)")
    _add_training_options(parser)
    parser.set_defaults(handler=_run_demo)


def add_run_command(subparsers: argparse._SubParsersAction) -> None:
    """``boxloop run``: the loop on a folder of images."""
    parser = subparsers.add_parser(
        "run",
        help="run the labelling loop locally on a folder of images",
        description="Upload every file under --images to the embedded AWS and run the labelling loop. People label "
        "in the browser at the printed address and the run waits for them; with --truth the simulated workforce "
        "answers from it instead (or, with --workforce browser, the report measures the people against it).",
    )
    parser.add_argument("--images", required=True, metavar="DIR", help="folder of JPEG/PNG images")
    parser.add_argument("--truth", metavar="COCO.json", help="COCO truth (file_name relative to --images)")
    parser.add_argument(
        "--workforce", choices=("browser", "simulated"),
        help="who labels: people in the browser (default without --truth) or the simulated workforce (default with it)",
    )  # fmt: skip
    parser.add_argument(
        "--config", metavar="labeling.json",
        help="labelling configuration (default: the demo's, classes from --classes or --truth); workforce.kind is "
        "set to --workforce",
    )  # fmt: skip
    parser.add_argument("--classes", metavar="NAME,NAME", help="classes to label, without --config (default: object)")
    parser.add_argument(
        "--budget-hours", type=float, default=None, metavar="H",
        help="people's time budget in hours (default: the configuration's human_budget_hours); without --config, "
        "the initial sample and batch sizes are derived from it and the number of images",
    )  # fmt: skip
    parser.add_argument(
        "--host", default="127.0.0.1", metavar="HOST",
        help="address the labelling app listens on (default 127.0.0.1; any other asks for the printed token)",
    )  # fmt: skip
    parser.add_argument(
        "--port", type=int, default=DEFAULT_APP_PORT, metavar="PORT",
        help=f"port of the labelling app (default {DEFAULT_APP_PORT}; 0: any free one)",
    )  # fmt: skip
    parser.add_argument("--out", default="out", metavar="DIR", help="output folder (default out)")
    parser.add_argument(
        "--resume", action="store_true",
        help="continue the run OUT/latest points at from its last published version (training options as saved)",
    )  # fmt: skip
    _add_training_options(parser)
    parser.set_defaults(handler=_run_folder)
