"""Check that every image's requirements install from wheels for the image's platform (reaches PyPI).

For each image in ``deploy.images.IMAGES`` pip resolves its requirements files, dependencies
included, as the image's pip would: ``--only-binary=:all:`` with the image's Python, ABI and every
manylinux tag its glibc accepts. ``--dry-run --report`` reads only the wheels' metadata, so nothing
large is downloaded. A requirement with no fitting wheel (one the image would have to compile) fails
the check, naming the image and pip's reason. ``--dockerfile``/``--requirements`` check one image.

    python -m deploy.check_wheels [--dockerfile lambdas/Dockerfile --requirements lambdas/requirements.txt]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from deploy.images import IMAGES, ContainerImage, ImagePlatform, image_platform


def pip_resolve_command(
    platform: ImagePlatform, requirements: tuple[Path, ...], target: Path, report: Path
) -> list[str]:
    """The ``pip install --dry-run`` that resolves ``requirements`` to wheels for ``platform`` only."""
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    command += ["--only-binary=:all:", "--python-version", platform.python, "--implementation", "cp"]
    command += ["--abi", platform.abi, "--abi", "abi3", "--abi", "none"]
    for tag in platform.platform_tags:
        command += ["--platform", tag]
    command += ["--target", str(target), "--report", str(report)]
    for path in requirements:
        command += ["-r", str(path)]
    return command


def check_image(image: ContainerImage) -> list[str]:
    """Problems with ``image``'s requirements (empty when every one resolves to a fitting wheel)."""
    platform = image_platform(image.dockerfile)
    with tempfile.TemporaryDirectory(prefix="boxloop-wheels-") as scratch:
        report = Path(scratch) / "report.json"
        command = pip_resolve_command(platform, image.requirements, Path(scratch) / "target", report)
        completed = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if completed.returncode != 0:
            reason = "\n    ".join(line for line in completed.stderr.splitlines() if line.startswith("ERROR"))
            return [
                f"{image.name}: no wheel for {platform.base_image} (Python {platform.python}, glibc "
                f"{platform.glibc[0]}.{platform.glibc[1]}):\n    {reason or completed.stderr.strip()}"
            ]
        installs = json.loads(report.read_text())["install"]
    urls = {item["metadata"]["name"]: item["download_info"]["url"] for item in installs}
    problems = [
        f"{image.name}: {name} would build from {url}" for name, url in urls.items() if not url.endswith(".whl")
    ]
    if not problems:
        print(
            f"{image.name}: {len(installs)} packages, all wheels for {platform.base_image} "
            f"(Python {platform.python}, glibc {platform.glibc[0]}.{platform.glibc[1]}, x86_64)"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    """Check every image (or the one given); exit 1 naming each requirement without a wheel."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dockerfile", type=Path, help="check this Dockerfile's base image …")
    parser.add_argument("--requirements", type=Path, nargs="+", help="… against these requirements files")
    args = parser.parse_args(argv)
    if (args.dockerfile is None) != (args.requirements is None):
        parser.error("--dockerfile and --requirements go together")
    images = [ContainerImage("given", args.dockerfile, tuple(args.requirements))] if args.dockerfile else IMAGES
    problems = [problem for image in images for problem in check_image(image)]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
