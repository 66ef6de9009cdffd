"""SageMaker inference handler for batch transform over the pool's JSONL shards.

Contract (the CDK stack and the local run rely on it): the transform input is
``runs/<run>/pool/*.jsonl`` with ``SplitType=Line``, ``BatchStrategy=MultiRecord``
and content type ``application/jsonlines``; each line is a
``boxloop.models.ImageRecord``. The output is one ``boxloop.models.Prediction``
JSON per input line, in the same order (``AssembleWith=Line``; a response
carries no trailing newline, so the assembled file has no blank lines). An
unreadable image, or a line that is not a valid ImageRecord, gives a line with
``error`` set, empty boxes and confidence 0 — never a failed batch.

Environment: ``BOXLOOP_BATCH_SIZE`` (default 32) images per forward pass,
``BOXLOOP_DECODE_WORKERS`` (default: up to 4) image-decoding worker processes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from pydantic import ValidationError

from boxloop.models import ImageRecord, Prediction
from sagemaker_jobs.model import load_model
from sagemaker_jobs.predictor import Predictor, predict_records

JSONLINES = "application/jsonlines"
ACCEPTED_CONTENT_TYPES = frozenset({JSONLINES, "application/x-jsonlines", "application/jsonl"})

PoolItem = ImageRecord | Prediction


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


def predict_fn(data: list[PoolItem], model: Predictor) -> list[Prediction]:
    """Fetch, decode and detect every image in batches; one Prediction per item, same order."""
    batch_size = int(os.environ.get("BOXLOOP_BATCH_SIZE", "32"))
    workers = int(os.environ.get("BOXLOOP_DECODE_WORKERS", str(min(4, os.cpu_count() or 1))))
    return list(predict_records(model, data, batch_size=batch_size, num_workers=workers))


def output_fn(prediction: list[Prediction], accept: str) -> bytes:
    """JSON Lines, one Prediction per line, no trailing newline; raises ValueError for another accept type."""
    if accept.split(";")[0].strip() not in ACCEPTED_CONTENT_TYPES | {"*/*"}:
        raise ValueError(f"unsupported accept type {accept!r}; ask for {JSONLINES}")
    return "\n".join(item.model_dump_json() for item in prediction).encode("utf-8")
