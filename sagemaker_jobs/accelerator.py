"""Refuse to run on a GPU instance whose GPU torch cannot use, instead of running on its CPU unnoticed.

torch's PyPI wheels bundle their CUDA runtime, which needs a recent enough NVIDIA driver on the host.
When the driver is older, ``torch.cuda.is_available()`` is False and the job would silently train or
infer on the CPU of a GPU instance (billed as a GPU). The container's ``train`` and ``serve`` call
``require_usable_gpu`` first.
"""

from __future__ import annotations

from pathlib import Path

import torch

NVIDIA_CONTROL_DEVICE = Path("/dev/nvidiactl")
NVIDIA_DRIVER_VERSION = Path("/proc/driver/nvidia/version")


class UnusableGpuError(RuntimeError):
    """The instance has an NVIDIA GPU that this torch build cannot use."""


def _driver_version(version_file: Path) -> str:
    try:
        return version_file.read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return "unknown (no /proc/driver/nvidia/version)"


def require_usable_gpu(
    control_device: Path = NVIDIA_CONTROL_DEVICE, version_file: Path = NVIDIA_DRIVER_VERSION
) -> bool:
    """True when a GPU is present and usable, False when there is none; UnusableGpuError when torch cannot use it."""
    if not control_device.exists():
        return False
    if torch.cuda.is_available():
        return True
    raise UnusableGpuError(
        f"this instance has an NVIDIA GPU but torch {torch.__version__} (CUDA {torch.version.cuda}) cannot use it; "
        f"NVIDIA driver: {_driver_version(version_file)}. The driver is older than this CUDA needs: choose a CPU "
        "instance type in cdk.json, or an instance whose driver supports this CUDA (docs/stack.md, 'First deploy')."
    )
