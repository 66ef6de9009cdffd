"""A stand-in training script (SageMaker script mode): checks both channels hold manifest lines, writes the model."""

import argparse
import json
import os
import sys
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--model_version", required=True)
parser.add_argument("--label_attribute", required=True)
arguments, _ = parser.parse_known_args()
counts = {}
for channel in ("train", "validation"):
    folder = Path(os.environ[f"SM_CHANNEL_{channel.upper()}"])
    lines = [line for path in folder.rglob("*.jsonl") for line in path.read_text().splitlines()]
    if not lines or any(arguments.label_attribute not in json.loads(line) for line in lines):
        print(f"the {channel} channel holds no manifest lines", file=sys.stderr)
        sys.exit(2)
    counts[channel] = len(lines)
model = {"model_version": arguments.model_version, "lines": counts}
Path(os.environ["SM_MODEL_DIR"], "model.json").write_text(json.dumps(model))
