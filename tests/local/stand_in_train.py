"""A tiny training script that obeys SageMaker's script-mode contract (used by the local SageMaker tests).

Counts the lines of every file in the ``train`` channel, writes ``model.json`` to ``SM_MODEL_DIR``
and prints a metric line. ``--fail`` makes it exit 3 with a message on stderr; ``--sleep`` sleeps first.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--scale", type=float, required=True)
parser.add_argument("--fail", default="no")
parser.add_argument("--sleep", type=float, default=0.0)
args = parser.parse_args()
time.sleep(args.sleep)
if args.fail == "yes":
    print("loading the training channel", flush=True)
    print("ValueError: the training channel holds no usable images", file=sys.stderr)
    sys.exit(3)
channel = Path(os.environ["SM_CHANNEL_TRAIN"])
lines = sum(len(path.read_text().splitlines()) for path in sorted(channel.rglob("*")) if path.is_file())
model = {
    "lines": lines,
    "scale": args.scale,
    "hps": json.loads(os.environ["SM_HPS"]),
    "files": sorted(str(path.relative_to(channel)) for path in channel.rglob("*") if path.is_file()),
    "channels": json.loads(os.environ["SM_CHANNELS"]),
}
Path(os.environ["SM_MODEL_DIR"], "model.json").write_text(json.dumps(model))
print(f"boxloop_metric epoch=1; train_loss={1.0 / (1 + lines):.4f};", flush=True)
