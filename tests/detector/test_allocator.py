"""The jobs keep freed tensor memory: training steps after the first fault in far fewer new pages."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from sagemaker_jobs import allocator, predictor
from sagemaker_jobs.model import DetectorConfig, build_detector

from .helpers import CLASSES, REPO_ROOT

FAULTS_OF_TRAINING_STEPS = """
import json, resource, sys
import torch
from sagemaker_jobs.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
torch.manual_seed(0)
torch.set_num_threads(1)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 3, padding=1))
images = torch.randn(8, 3, 128, 128)  # 16 MiB activations per layer: above glibc's mmap threshold at first
def step():
    net(images).square().mean().backward()
for _ in range(5):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(json.dumps({"applied": applied, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""

GLIBC = platform.libc_ver()[0] == "glibc"


def _faults(mode: str) -> dict:
    finished = subprocess.run(
        [sys.executable, "-c", FAULTS_OF_TRAINING_STEPS, mode],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(finished.stdout)


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_training_steps_reuse_freed_memory_instead_of_faulting_it_in_again() -> None:
    default, kept = _faults("default"), _faults("keep")
    assert kept["applied"] is True
    assert kept["faults"] * 4 < default["faults"]  # 0–8,000 against 65,000–110,000 on the 2-core machine


def test_without_mallopt_the_allocator_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: object())  # a C library without mallopt
    assert allocator.keep_freed_memory() is False


def test_every_predictor_keeps_freed_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(predictor, "keep_freed_memory", lambda: calls.append("kept") or True)
    config = DetectorConfig(architecture="tiny", class_names=CLASSES, image_size=64, neck_channels=16, embedding_dim=16)
    predictor.Predictor(build_detector(config, pretrained_backbone=False))
    assert calls == ["kept"]
