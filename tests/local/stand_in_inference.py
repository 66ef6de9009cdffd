"""A stand-in SageMaker inference module (model_fn / input_fn / predict_fn / output_fn) for transform tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def model_fn(model_dir: str) -> dict[str, Any]:
    """Load the stand-in training script's ``model.json``."""
    return json.loads(Path(model_dir, "model.json").read_text())


def input_fn(body: bytes, content_type: str) -> list[dict[str, Any]]:
    """Parse a JSON-lines mini-batch."""
    assert content_type == "application/jsonlines"
    return [json.loads(line) for line in body.decode().splitlines()]


def predict_fn(records: list[dict[str, Any]], model: dict[str, Any]) -> list[dict[str, Any]]:
    """Scale each record's value by the model's scale; a record without a value is an error."""
    return [{"id": record["id"], "score": record["value"] * model["scale"]} for record in records]


def output_fn(predictions: list[dict[str, Any]], accept: str) -> str:
    """JSON lines."""
    return "\n".join(json.dumps(prediction) for prediction in predictions)
