"""SageMaker inference handler for batch transform over the pool's JSONL shards.

Contract (the CDK stack and the local run rely on it): the transform input is
``runs/<run>/pool/*.jsonl`` with ``SplitType=Line``, ``BatchStrategy=MultiRecord``
and content type ``application/jsonlines``; each line is a
``boxloop.models.ImageRecord``. The output is one ``boxloop.models.Prediction``
JSON per input line, in the same order (``AssembleWith=Line``; a response
carries no trailing newline, so the assembled file has no blank lines). An
unreadable image, or a line that is not a valid ImageRecord, gives a line with
``error`` set, empty boxes and confidence 0 — never a failed batch.

Environment: ``BOXLOOP_BATCH_SIZE`` images per forward pass and ``BOXLOOP_DECODE_WORKERS`` image-loading
worker processes; their defaults follow from the instance (``default_batch_size``, ``default_decode_workers``,
measured by ``bench/pool_inference.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from pydantic import ValidationError

from boxloop.models import ImageRecord, Prediction
from sagemaker_jobs.model import load_model
from sagemaker_jobs.predictor import Predictor, predict_lines

JSONLINES = "application/jsonlines"
ACCEPTED_CONTENT_TYPES = frozenset({JSONLINES, "application/x-jsonlines", "application/jsonl"})

PoolItem = ImageRecord | Prediction

GPU_BATCH_SIZE = 128
CPU_BATCH_SIZE = 4
"""With the mirrored pass, 8 canvases per forward: on 2 CPU cores 22 images/s against 14.5 at 32 (batch 16)."""


def parse_pool_lines(text: str, source_name: str = "request") -> list[PoolItem]:
    """One item per non-blank line: an ImageRecord, or an error Prediction naming the line and the problem."""
    items: list[PoolItem] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(ImageRecord.model_validate_json(line))
        except ValidationError as exc:
            try:
                decoded = json.loads(line)
            except json.JSONDecodeError:
                decoded = {}
            image_id = decoded.get("image_id") if isinstance(decoded, dict) else None
            source_ref = decoded.get("source_ref") if isinstance(decoded, dict) else None
            problem = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<line>'}: {e['msg']}" for e in exc.errors())
            items.append(
                Prediction(
                    image_id=image_id if isinstance(image_id, str) else "",
                    source_ref=source_ref if isinstance(source_ref, str) else None,
                    error=f"{source_name}, line {line_number}: not an ImageRecord: {problem}",
                )
            )
    return items


def model_fn(model_dir: str) -> Predictor:
    """Load the trained detector from the unpacked model artefact (on CUDA when available)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return Predictor(load_model(Path(model_dir), device), device)


def input_fn(body: bytes | str, content_type: str) -> list[PoolItem]:
    """Parse a JSON Lines request of ImageRecords; raises ValueError for another content type."""
    if content_type.split(";")[0].strip() not in ACCEPTED_CONTENT_TYPES:
        raise ValueError(f"unsupported content type {content_type!r}; send {JSONLINES}")
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    return parse_pool_lines(text)


def default_batch_size(device: torch.device) -> int:
    """Images per forward pass: large enough to fill a GPU; on a CPU small, since larger batches outgrow the caches."""
    return GPU_BATCH_SIZE if device.type == "cuda" else CPU_BATCH_SIZE


def default_decode_workers(device: torch.device, cores: int | None = None) -> int:
    """Image-loading processes: on a GPU instance every core but the one driving the GPU; on a CPU instance one
    (its fetch threads keep up with the model, which needs the cores)."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores - 1) if device.type == "cuda" else 1


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if value < 0 or (value == 0 and name == "BOXLOOP_BATCH_SIZE"):
        raise ValueError(f"{name}={raw!r} is out of range")
    return value


def predict_fn(data: list[PoolItem], model: Predictor) -> list[str]:
    """Fetch, decode and detect every image in batches; one Prediction JSON line per item, same order."""
    batch_size = _positive_int("BOXLOOP_BATCH_SIZE", default_batch_size(model.device))
    workers = _positive_int("BOXLOOP_DECODE_WORKERS", default_decode_workers(model.device))
    return list(predict_lines(model, data, batch_size=batch_size, num_workers=workers))


def output_fn(prediction: list[str], accept: str) -> bytes:
    """JSON Lines, one Prediction per line, no trailing newline; raises ValueError for another accept type."""
    if accept.split(";")[0].strip() not in ACCEPTED_CONTENT_TYPES | {"*/*"}:
        raise ValueError(f"unsupported accept type {accept!r}; ask for {JSONLINES}")
    return "\n".join(prediction).encode("utf-8")
