"""CPU benchmark of the detector on the synthetic corpus (not a test).

Generates train / validation / held-out corpora with ``boxloop.corpus``, writes
Ground Truth manifests for the first two, runs ``python -m sagemaker_jobs.train``
with SageMaker's environment variables, then evaluates the saved model on the
held-out images: mAP@0.5, mean image IoU (all / easy / hard) and the Spearman
correlation of candidate per-image confidence scores with the true image IoU.

    .venv/bin/python bench/detector_cpu.py --work /tmp/detector-bench --max-seconds 600
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from boxloop.corpus import CLASS_NAMES, CorpusSpec, generate_corpus, load_truth
from boxloop.quality import coco_map, image_miou
from sagemaker_jobs.data import LabelledImage, preload
from sagemaker_jobs.evaluation import boxes_in_original_pixels, predict_preloaded
from sagemaker_jobs.model import load_model
from sagemaker_jobs.predictor import (
    MIN_DECODE_SCORE,
    Predictor,
    RawResult,
    decision_certainty,
    flip_agreement,
    image_confidence,
)

LABEL_ATTRIBUTE = "bounding-box"


def corpus(out_dir: Path, images: int, seed: int) -> tuple[list[LabelledImage], list[str]]:
    """Generate (once) a corpus and return its labelled images and per-image difficulty."""
    if not (out_dir / "truth.json").exists():
        generate_corpus(CorpusSpec(n_images=images, seed=seed), out_dir)
    truth = json.loads((out_dir / "truth.json").read_text())
    boxes = load_truth(out_dir / "truth.json")
    labelled = [
        LabelledImage(
            source_ref=str(out_dir / "images" / image["file_name"]),
            base_dir=out_dir,
            width=image["width"],
            height=image["height"],
            boxes=boxes[image["file_name"]],
        )
        for image in truth["images"]
    ]
    return labelled, [image["difficulty"] for image in truth["images"]]


def write_manifest(images: list[LabelledImage], path: Path) -> None:
    """Ground Truth augmented-manifest lines for ``images`` (file:// source refs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for image in images:
        label = {
            "image_size": [{"width": image.width, "height": image.height, "depth": 3}],
            "annotations": [box.model_dump() for box in image.boxes],
        }
        lines.append(json.dumps({"source-ref": f"file://{image.source_ref}", LABEL_ATTRIBUTE: label}))
    path.write_text("\n".join(lines) + "\n")


def run_training(work: Path, args: argparse.Namespace) -> float:
    """Run the training job as SageMaker would; returns its wall-clock seconds."""
    hyperparameters = {
        "model": "centernet-effnet-lite0",
        "classes": json.dumps(list(CLASS_NAMES)),
        "image_size": str(args.image_size),
        "batch_size": str(args.batch_size),
        "max_seconds": str(args.max_seconds),
        "epochs": str(args.epochs),
        "lr": str(args.lr),
        "seed": str(args.seed),
        "num_workers": "2",
    }
    environment = {
        **os.environ,
        "SM_CHANNEL_TRAIN": str(work / "channels" / "train"),
        "SM_CHANNEL_VALIDATION": str(work / "channels" / "validation"),
        "SM_MODEL_DIR": str(work / "model"),
        "SM_OUTPUT_DATA_DIR": str(work / "output"),
        "SM_HPS": json.dumps(hyperparameters),
        "OMP_NUM_THREADS": str(args.threads),
    }
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "sagemaker_jobs.train"], env=environment, check=True)
    return time.monotonic() - started


def confidence_scores(result: RawResult, threshold: float, canvas_size: int) -> dict[str, float]:
    """Candidate per-image confidence scores (the shipped one is ``flip_x_certainty``)."""
    scores = result.detections.scores[result.detections.scores >= threshold].tolist()
    flip = flip_agreement(result, threshold, canvas_size)
    certainty = decision_certainty(result.detections.scores, threshold)
    return {
        "mean_box_score": float(np.mean(scores)) if scores else 0.0,
        "min_box_score": min(scores) if scores else 0.0,
        "decision_certainty": certainty,
        "flip_agreement": flip,
        "flip_x_min_score": flip * (min(scores) if scores else 0.0),
        "flip_x_certainty": image_confidence(result, threshold, canvas_size),
        "flip_x_sqrt_certainty": flip * certainty**0.5,
    }


def evaluate_held_out(model_dir: Path, images: list[LabelledImage], difficulty: list[str], args: argparse.Namespace) -> dict:
    """Held-out mAP, image IoU by difficulty, confidence correlations and inference speed."""
    model = load_model(model_dir)
    predictor = Predictor(model, "cpu")
    threshold = model.config.score_threshold
    data = preload(images, model.config.image_size, num_workers=2)
    started = time.monotonic()
    results = predict_preloaded(predictor, data, 32, with_flip=True)
    seconds_per_image = (time.monotonic() - started) / len(images)
    all_boxes = boxes_in_original_pixels(results, data, images, MIN_DECODE_SCORE)
    keys = [str(index) for index in range(len(images))]
    mean_ap = coco_map(
        dict(zip(keys, all_boxes)),
        {key: image.boxes for key, image in zip(keys, images)},
        {key: (image.width, image.height) for key, image in zip(keys, images)},
        range(len(CLASS_NAMES)),
    )
    quality = np.array(
        [image_miou([b for b in boxes if b.score >= threshold], image.boxes) for boxes, image in zip(all_boxes, images)]
    )
    hard = np.array([level == "hard" for level in difficulty])

    def subset_map(mask: np.ndarray) -> float:
        chosen = [key for key, keep in zip(keys, mask) if keep]
        return coco_map(
            {key: all_boxes[int(key)] for key in chosen},
            {key: images[int(key)].boxes for key in chosen},
            {key: (images[int(key)].width, images[int(key)].height) for key in chosen},
            range(len(CLASS_NAMES)),
        ).map50

    candidates = [confidence_scores(result, threshold, model.config.image_size) for result in results]
    correlation: dict[str, dict[str, float]] = {}
    for name in candidates[0]:
        values = np.array([candidate[name] for candidate in candidates])
        spearman: Callable[[np.ndarray], float] = lambda mask: float(spearmanr(values[mask], quality[mask]).statistic)
        correlation[name] = {
            "all": spearman(np.ones_like(hard)),
            "easy": spearman(~hard),
            "hard": spearman(hard),
        }
    return {
        "score_threshold": threshold,
        "map50": mean_ap.map50,
        "map50_95": mean_ap.map50_95,
        "map50_easy": subset_map(~hard),
        "map50_hard": subset_map(hard),
        "miou": float(quality.mean()),
        "miou_easy": float(quality[~hard].mean()),
        "miou_hard": float(quality[hard].mean()),
        "inference_seconds_per_image_with_flip": seconds_per_image,
        "confidence_spearman": correlation,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--train-images", type=int, default=500)
    parser.add_argument("--validation-images", type=int, default=100)
    parser.add_argument("--held-out-images", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-training", action="store_true", help="evaluate the model already in --work")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = args.work
    train_images, _ = corpus(work / "corpus-train", args.train_images, seed=101)
    validation_images, _ = corpus(work / "corpus-validation", args.validation_images, seed=102)
    held_out, difficulty = corpus(work / "corpus-held-out", args.held_out_images, seed=103)
    write_manifest(train_images, work / "channels" / "train" / "train.jsonl")
    write_manifest(validation_images, work / "channels" / "validation" / "validation.jsonl")
    training_seconds = None if args.skip_training else run_training(work, args)
    report = {
        "training_job_seconds": training_seconds,
        "validation": json.loads((work / "output" / "metrics.json").read_text()),
        "held_out": evaluate_held_out(work / "model", held_out, difficulty, args),
        "load_average_1min": os.getloadavg()[0],
    }
    print(json.dumps(report, indent=2))
    (work / "report.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
