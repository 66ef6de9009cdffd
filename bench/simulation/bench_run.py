"""What every benchmark records beside its figures: when, on what machine, with which command."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from boxloop.corpus import CLASS_NAMES
from sagemaker_jobs.model import DEFAULT_ARCHITECTURE, ArchitectureName
from simulation.detector_jobs import DetectorSettings

CLASSES: tuple[str, ...] = CLASS_NAMES
"""The synthetic corpus's product classes, in class-id order."""


def machine() -> str:
    """A one-line description of this machine (cores, memory, CPU model, load)."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split()[1])
        memory = f", {total_kb / 2**20:.0f} GiB RAM"
    return f"{os.cpu_count()} CPU cores ({cpu}){memory}, load average {os.getloadavg()[0]:.1f} at the start"


def run_header(benchmark: str) -> dict:
    """The ``benchmark``, ``date``, ``machine`` and ``command`` fields of a result file."""
    return {
        "benchmark": benchmark,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
    }


def write_json(path: Path, document: dict) -> None:
    """Write ``document`` as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n")


def say(message: str) -> None:
    """Progress on stderr, so stdout holds only the figures."""
    print(message, file=sys.stderr, flush=True)


def add_detector_arguments(parser: argparse.ArgumentParser) -> None:
    """The detector options every policy benchmark takes."""
    parser.add_argument("--detector", choices=get_args(ArchitectureName), default=DEFAULT_ARCHITECTURE)
    parser.add_argument("--image-size", type=int, default=128, help="detector input size (corpus images are 256 px)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for training and inference")


def detector_settings(
    args: argparse.Namespace, *, epochs: int, seed: int, classes: tuple[str, ...]
) -> DetectorSettings:
    """The training settings of ``add_detector_arguments``' options with this job's epochs, seed and classes."""
    return DetectorSettings(
        classes,
        model=args.detector,
        image_size=args.image_size,
        threads=args.threads,
        epochs=epochs,
        seed=seed,
    )


def add_workforce_arguments(parser: argparse.ArgumentParser) -> None:
    """The human side of a loop benchmark: the budget of every loop and the simulated people's anchoring and
    pre-fill factor (the defaults the efficiency figures of record use)."""
    parser.add_argument("--budget-hours", type=float, default=100.0, help="the human budget of every loop")
    parser.add_argument("--anchoring", type=float, default=0.3, help="share of pre-filled errors people keep")
    parser.add_argument("--prefill-factor", type=float, default=0.5, help="adjusting time ÷ drawing time")


def benchmark_parser(description: str, name: str) -> argparse.ArgumentParser:
    """A benchmark's options: ``--work`` (corpora and jobs), ``--json`` and ``--plot`` (results, by default in
    ``docs/benchmarks/``) and the detector options; the script adds its own."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("bench-work") / name, help="corpora and training jobs")
    parser.add_argument("--json", type=Path, default=Path("docs/benchmarks") / f"{name}.json", help="results file")
    parser.add_argument("--plot", type=Path, default=Path("docs/benchmarks") / f"{name}.png", help="plot file")
    add_detector_arguments(parser)
    return parser


def save_figure(figure: Figure, path: Path) -> None:
    """Write a matplotlib figure as a PNG, creating the folder, and release it."""
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
