"""The container images ``cdk deploy`` builds, and the platform each one's pip installs wheels for.

pip installs a binary wheel only when its platform tag fits the image: ``manylinux_2_X`` needs
glibc ≥ 2.X, and the ``cpXY`` tag the image's Python. A requirement with no fitting wheel makes
pip build it from source, which needs compilers the slim images do not have, so the build (and
``cdk deploy``) fails. The platform comes from the Dockerfile's base image: a Debian-based
``python:X.Y-slim-<codename>`` (glibc from the Debian release), or the Amazon Linux ones named
in ``KNOWN_BASE_IMAGES``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
DEBIAN_GLIBC = {"bullseye": (2, 31), "bookworm": (2, 36), "trixie": (2, 41)}
"""glibc of each Debian release the ``python`` images are built on."""
KNOWN_BASE_IMAGES = {
    "public.ecr.aws/lambda/python:3.11": ("3.11", (2, 26)),
    "public.ecr.aws/lambda/python:3.12": ("3.12", (2, 34)),
}
"""AWS's Lambda base images: Python 3.11 on Amazon Linux 2 (glibc 2.26), 3.12 on Amazon Linux 2023 (2.34)."""
_PYTHON_SLIM = re.compile(r"^python:(?P<python>3\.\d+)(?:\.\d+)?-slim-(?P<codename>[a-z]+)$")
LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
ARCHITECTURE = "x86_64"


class ImagePlatformError(ValueError):
    """A Dockerfile whose base image's Python or glibc is unknown."""


@dataclass(frozen=True)
class ImagePlatform:
    """What pip installs for: the base image, its Python (``3.11``) and glibc (``(2, 36)``), x86_64."""

    base_image: str
    python: str
    glibc: tuple[int, int]

    @property
    def platform_tags(self) -> list[str]:
        """Every manylinux tag this glibc accepts, newest first (pip does not widen one ``--platform`` itself)."""
        major, newest = self.glibc
        tags = [f"manylinux_{major}_{minor}_{ARCHITECTURE}" for minor in range(newest, 4, -1)]
        tags += [f"{legacy}_{ARCHITECTURE}" for version, legacy in LEGACY_MANYLINUX.items() if version <= self.glibc]
        return tags

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")


@dataclass(frozen=True)
class ContainerImage:
    """An image ``cdk deploy`` builds: its Dockerfile and the requirements files its pip installs."""

    name: str
    dockerfile: Path
    requirements: tuple[Path, ...]


IMAGES = (
    ContainerImage(
        "lambda",
        REPOSITORY_ROOT / "lambdas" / "Dockerfile",
        (REPOSITORY_ROOT / "lambdas" / "requirements.txt", REPOSITORY_ROOT / "lambdas" / "runtime-requirements.txt"),
    ),
    ContainerImage(
        "sagemaker-jobs",
        REPOSITORY_ROOT / "sagemaker_jobs" / "Dockerfile",
        (REPOSITORY_ROOT / "sagemaker_jobs" / "requirements.txt",),
    ),
)


def base_image(dockerfile: Path) -> str:
    """The image of the Dockerfile's first ``FROM`` line (without ``AS <stage>``)."""
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if words and words[0].upper() == "FROM":
            return next(word for word in words[1:] if not word.startswith("--"))
    raise ImagePlatformError(f"{dockerfile} has no FROM line")


def image_platform(dockerfile: Path) -> ImagePlatform:
    """The Python and glibc of ``dockerfile``'s base image; ImagePlatformError for an image not known here."""
    image = base_image(dockerfile)
    if image in KNOWN_BASE_IMAGES:
        python, glibc = KNOWN_BASE_IMAGES[image]
        return ImagePlatform(image, python, glibc)
    match = _PYTHON_SLIM.match(image)
    if match is None or match["codename"] not in DEBIAN_GLIBC:
        raise ImagePlatformError(
            f"{dockerfile}: base image {image!r} is not one whose glibc is known here: use python:3.X-slim-<"
            f"{'|'.join(DEBIAN_GLIBC)}> or add it to deploy/images.py"
        )
    return ImagePlatform(image, match["python"], DEBIAN_GLIBC[match["codename"]])
