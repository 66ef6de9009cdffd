"""The ``boxloop`` command.

Each subcommand is one ``_add_<name>_command(subparsers)`` function that adds its
parser and sets ``handler`` (a function of the parsed arguments returning the exit
status); listing it in ``SUBCOMMANDS`` registers it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from boxloop.corpus import generate_corpus
from boxloop.corpus_profiles import PROFILE_NAMES, profile_spec


def _run_corpus(args: argparse.Namespace) -> int:
    overrides = {"image_size": args.size, "easy_share": args.easy_share}
    try:
        spec = profile_spec(
            args.profile,
            args.images,
            args.seed,
            **{name: value for name, value in overrides.items() if value is not None},
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}" for err in exc.errors())
        print(f"boxloop corpus: invalid arguments: {problems}", file=sys.stderr)
        return 2
    try:
        summary = generate_corpus(spec, args.out, workers=args.workers, show_progress=True)
    except (FileExistsError, ValueError) as exc:
        print(f"boxloop corpus: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {summary.n_images} images ({summary.n_easy} easy, {summary.n_hard} hard, "
        f"{summary.n_objects} objects) to {summary.out_dir} and {summary.truth_path} "
        f"in {summary.elapsed_seconds:.1f} s"
    )
    return 0


def _add_corpus_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "corpus",
        help="generate a synthetic product-photo corpus with COCO truth",
        description="Write N synthetic product photos under OUT/images and their COCO truth to OUT/truth.json, "
        "shaped by a profile (boxloop/corpus_profiles.py).",
    )
    parser.add_argument(
        "--profile", choices=PROFILE_NAMES, default=PROFILE_NAMES[0],
        help="retail (default: one or several products), dense (10-16 small objects, 3 classes), single-class, "
        "small-objects (7-16 px on the detector's canvas) or mixed-sizes",
    )  # fmt: skip
    parser.add_argument("--images", type=int, required=True, metavar="N", help="number of images")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (its images/ must be empty)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument(
        "--size", type=int, metavar="PX", help="image side in pixels (default: the profile's, 256 mostly)"
    )
    parser.add_argument("--easy-share", type=float, metavar="F", help="share of easy images (default: the profile's)")
    parser.add_argument("--workers", type=int, default=None, metavar="K", help="worker processes (default: all cores)")
    parser.set_defaults(handler=_run_corpus)


def _add_demo_command(subparsers: argparse._SubParsersAction) -> None:
    from boxloop.local.commands import add_demo_command

    add_demo_command(subparsers)


def _add_run_command(subparsers: argparse._SubParsersAction) -> None:
    from boxloop.local.commands import add_run_command

    add_run_command(subparsers)


SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_corpus_command,
    _add_demo_command,
    _add_run_command,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``boxloop`` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="boxloop", description="Active-learning labeller for object detection.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in SUBCOMMANDS:
        add_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``boxloop`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
