"""Training and pool inference with the real ``sagemaker_jobs`` code: the training script under SageMaker's
container contract (a subprocess with ``SM_*`` variables, as the local run and SageMaker start it) and the
batched predictor that pool inference uses.

A job's inputs decide its output (training is step-bounded), so both are memoised within one process: two
policies that train on the same labels with the same warm start (e.g. the first iteration of two policies that
differ only in their quality target) share the model and its predictions, and the time is counted once, for the
first. A finished job found on disk under the work folder (its ``metrics.json`` and measured seconds are there) is
not trained again in a later process; the run counts the seconds it took then, so a benchmark run in parts, or
resumed after a crash, gives the same figures without retraining.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from boxloop.models import Box, Prediction
from sagemaker_jobs.model import load_model
from sagemaker_jobs.predictor import Predictor, predict_records
from simulation.corpus_images import CorpusImage

LABEL_ATTRIBUTE = "bounding-box"
SECONDS_FILE = "seconds.json"
"""Beside a finished job: how long it took (written after ``output/metrics.json``, so its presence means done)."""


@dataclass(frozen=True)
class DetectorSettings:
    """What every training job of a benchmark gets."""

    classes: tuple[str, ...]
    image_size: int = 128
    epochs: int = 12
    max_steps: int | None = None
    max_seconds: float = 3600.0
    """Training runs the steps ``epochs`` (at most ``max_steps``) give on the data, whatever the machine's speed;
    ``max_seconds`` is only the job's safety stop."""
    batch_size: int = 16
    seed: int = 0
    threads: int = 2
    model: str = "centernet-effnet-lite0"

    def hyperparameters(self) -> dict[str, str]:
        """SageMaker-style string hyperparameters for ``sagemaker_jobs.train``."""
        return {
            "model": self.model,
            "classes": json.dumps(list(self.classes)),
            "label_attribute": LABEL_ATTRIBUTE,
            "image_size": str(self.image_size),
            "batch_size": str(self.batch_size),
            "epochs": str(self.epochs),
            **({} if self.max_steps is None else {"max_steps": str(self.max_steps)}),
            "max_seconds": str(self.max_seconds),
            "seed": str(self.seed),
            "num_workers": str(self.threads),
        }


@dataclass(frozen=True)
class TrainedModel:
    """A trained model directory and what it cost."""

    key: str
    model_dir: Path
    seconds: float
    train_images: int
    reused: bool = False


def manifest_lines(images: Iterable[CorpusImage], labels: Mapping[str, Sequence[Box]]) -> list[str]:
    """Ground Truth augmented-manifest lines (``file://`` source refs) for ``images`` with ``labels[image_id]``."""
    lines = []
    for image in images:
        label = {
            "image_size": [{"width": image.width, "height": image.height, "depth": 3}],
            "annotations": [box.model_dump() for box in labels[image.image_id]],
        }
        lines.append(json.dumps({"source-ref": f"file://{image.path}", LABEL_ATTRIBUTE: label}, sort_keys=True))
    return lines


def run_training_job(
    job_dir: Path,
    train_lines: Sequence[str],
    validation_lines: Sequence[str],
    hyperparameters: Mapping[str, str],
    threads: int,
    warm_start: Path | None = None,
) -> float:
    """Run ``python -m sagemaker_jobs.train`` as SageMaker would (channels under ``job_dir``); returns its seconds.

    The model lands in ``job_dir/model``, the job's metrics in ``job_dir/output/metrics.json`` and its log
    in ``job_dir/training.log``. Raises RuntimeError with the log's tail when the job fails.
    """
    channels = {"train": train_lines, "validation": validation_lines}
    for name, lines in channels.items():
        (job_dir / "channels" / name).mkdir(parents=True, exist_ok=True)
        (job_dir / "channels" / name / f"{name}.manifest").write_text("\n".join(lines) + "\n")
    environment = {
        **os.environ,
        "SM_CHANNEL_TRAIN": str(job_dir / "channels" / "train"),
        "SM_CHANNEL_VALIDATION": str(job_dir / "channels" / "validation"),
        "SM_MODEL_DIR": str(job_dir / "model"),
        "SM_OUTPUT_DATA_DIR": str(job_dir / "output"),
        "SM_HPS": json.dumps(dict(hyperparameters)),
        "OMP_NUM_THREADS": str(threads),
    }
    if warm_start is not None:
        environment["SM_CHANNEL_WARM_START"] = str(warm_start)
    log_path = job_dir / "training.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        finished = subprocess.run(
            [sys.executable, "-m", "sagemaker_jobs.train"], env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    if finished.returncode != 0:
        tail = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"training job in {job_dir} failed (exit {finished.returncode}):\n{tail}")
    return time.monotonic() - started


class DetectorJobs:
    """Memoised training jobs and pool inference for one benchmark process."""

    def __init__(self, work_dir: Path, settings: DetectorSettings) -> None:
        self.work_dir = work_dir
        self.settings = settings
        self._models: dict[str, TrainedModel] = {}
        self._predictions: dict[tuple[str, str], Prediction] = {}
        self._predictor: tuple[str, Predictor] | None = None
        """The last model's predictor (by model key): policies infer with one model at a time."""
        torch.set_num_threads(settings.threads)

    def train(
        self,
        train: Sequence[CorpusImage],
        validation: Sequence[CorpusImage],
        labels: Mapping[str, Sequence[Box]],
        warm_start: TrainedModel | None,
    ) -> TrainedModel:
        """A model trained on ``train`` (checked on ``validation``) with ``labels``, warm-started when given."""
        train_lines = sorted(manifest_lines(train, labels))
        validation_lines = sorted(manifest_lines(validation, labels))
        hyperparameters = self.settings.hyperparameters()
        digest = hashlib.sha256()
        for part in (json.dumps(hyperparameters, sort_keys=True), *train_lines, "--", *validation_lines):
            digest.update(part.encode())
        digest.update((warm_start.key if warm_start else "").encode())
        key = digest.hexdigest()[:16]
        if key in self._models:
            cached = self._models[key]
            return TrainedModel(cached.key, cached.model_dir, 0.0, cached.train_images, reused=True)
        job_dir = self.work_dir / "training-jobs" / key
        finished = job_dir / SECONDS_FILE
        if finished.exists() and (job_dir / "output" / "metrics.json").exists():
            seconds = float(json.loads(finished.read_text())["seconds"])
        else:
            seconds = run_training_job(
                job_dir,
                train_lines,
                validation_lines,
                {**hyperparameters, "model_version": key},
                self.settings.threads,
                warm_start.model_dir if warm_start else None,
            )
            finished.write_text(json.dumps({"seconds": seconds}))
        model = TrainedModel(key, job_dir / "model", seconds, len(train_lines))
        self._models[key] = model
        return model

    def infer(self, model: TrainedModel, images: Sequence[CorpusImage]) -> tuple[dict[str, Prediction], float, int]:
        """Predictions for ``images`` (image id → Prediction), the seconds spent and how many were computed now."""
        missing = [image for image in images if (model.key, image.image_id) not in self._predictions]
        started = time.monotonic()
        if missing:
            if self._predictor is None or self._predictor[0] != model.key:
                self._predictor = (model.key, Predictor(load_model(model.model_dir), "cpu"))
            predictor = self._predictor[1]
            records = [image.record() for image in missing]
            for prediction in predict_records(predictor, records, batch_size=32, num_workers=self.settings.threads):
                self._predictions[(model.key, prediction.image_id)] = prediction
        seconds = time.monotonic() - started
        return (
            {image.image_id: self._predictions[(model.key, image.image_id)] for image in images},
            seconds,
            len(missing),
        )
