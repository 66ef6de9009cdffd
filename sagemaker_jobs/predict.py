"""Local batched pool inference with the same code as the SageMaker handler.

    python -m sagemaker_jobs.predict --model-dir MODEL --input pool.jsonl --output predictions.jsonl \
        [--batch-size 16] [--device cuda] [--num-workers 1]

Reads ImageRecord JSON lines from one or more files and
writes one Prediction JSON line per input line in the same order. Input is
processed in chunks, so the pool never sits in memory whole.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from sagemaker_jobs.inference import default_batch_size, default_decode_workers, parse_pool_lines
from sagemaker_jobs.model import load_model
from sagemaker_jobs.predictor import NO_ERROR_LINE_END, Predictor, predict_lines

CHUNK_LINES = 2048


def predict_file(predictor: Predictor, input_path: Path, batch_size: int, num_workers: int) -> Iterator[str]:
    """Prediction JSON lines for every line of ``input_path``, chunk by chunk, in order."""
    with input_path.open(encoding="utf-8", errors="replace") as handle:
        first_line = 1
        while chunk := list(itertools.islice(handle, CHUNK_LINES)):
            items = parse_pool_lines("".join(chunk), f"{input_path} (from line {first_line})")
            yield from predict_lines(predictor, items, batch_size=batch_size, num_workers=num_workers)
            first_line += len(chunk)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the boxloop detector over pool JSONL shards in batches.")
    parser.add_argument("--model-dir", type=Path, required=True, help="model directory or model.tar.gz")
    parser.add_argument("--input", type=Path, required=True, nargs="+", help="pool JSONL shard(s)")
    parser.add_argument("--output", type=Path, required=True, help="predictions JSONL to write")
    parser.add_argument("--batch-size", type=int, help="images per forward pass (default: by device)")
    parser.add_argument("--num-workers", type=int, help="image-loading worker processes (default: by device)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    batch_size = args.batch_size or default_batch_size(device)
    workers = default_decode_workers(device) if args.num_workers is None else args.num_workers
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    predictor = Predictor(load_model(args.model_dir, device), device)
    count = errors = 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8") as out:
        for input_path in args.input:
            for line in predict_file(predictor, input_path, batch_size, workers):
                out.write(line + "\n")
                count += 1
                errors += not line.endswith(NO_ERROR_LINE_END)
    print(f"wrote {count} predictions ({errors} with errors) to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
