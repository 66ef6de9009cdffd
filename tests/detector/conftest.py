"""Session fixtures for the detector tests: labelled image sets and one tiny model trained as SageMaker would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import REPO_ROOT, sagemaker_environment, tiny_hyperparameters, write_labelled_set


@pytest.fixture(scope="session")
def labelled_sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("labelled")
    return write_labelled_set(root / "train", 24, seed=1), write_labelled_set(root / "validation", 8, seed=2)


@pytest.fixture(scope="session")
def trained_job(tmp_path_factory: pytest.TempPathFactory, labelled_sets: tuple[Path, Path]) -> tuple[Path, str]:
    """Run train.py as SageMaker would (a subprocess with SM_* variables); returns (job root, stdout)."""
    root = tmp_path_factory.mktemp("job")
    train, validation = labelled_sets
    environment = {**os.environ, **sagemaker_environment(root, train, validation, tiny_hyperparameters())}
    completed = subprocess.run(
        [sys.executable, "-m", "sagemaker_jobs.train"],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return root, completed.stdout
