"""CPU benchmark of the detector on the synthetic corpus (not a test).

Generates train / validation / held-out corpora with ``boxloop.corpus``, writes
Ground Truth manifests for the first two, runs ``python -m sagemaker_jobs.train``
with SageMaker's environment variables, then evaluates the saved model on the
held-out images: mAP@0.5, mean image IoU (all / easy / hard) and the Spearman
correlation of candidate per-image confidence scores with the true image IoU.

    .venv/bin/python bench/detector_cpu.py --work /tmp/detector-bench --epochs 20   # → docs/benchmarks/detector-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from boxloop.corpus import CLASS_NAMES, CorpusSpec
from boxloop.quality import image_miou
from sagemaker_jobs.predictor import BatchPredictions
from simulation.bench_run import run_header, write_json
from simulation.corpus_images import CorpusImage, corpus_images
from simulation.detector_jobs import DetectorSettings, manifest_lines, run_training_job
from simulation.evaluation import HeldOutPredictions, labelled_images, predict_held_out, score_held_out


def corpus(out_dir: Path, images: int, seed: int) -> list[CorpusImage]:
    """Generate (once) a corpus of ``images`` images with ``seed``."""
    return corpus_images(out_dir, CorpusSpec(n_images=images, seed=seed))


def run_training(
    work: Path, train: list[CorpusImage], validation: list[CorpusImage], args: argparse.Namespace
) -> float:
    """Run the training job as SageMaker would; returns its wall-clock seconds."""
    settings = DetectorSettings(
        CLASS_NAMES,
        image_size=args.image_size,
        epochs=args.epochs,
        max_seconds=args.max_seconds,
        batch_size=args.batch_size,
        seed=args.seed,
        threads=args.threads,
    )
    truth = {image.image_id: list(image.truth) for image in train + validation}
    hyperparameters = settings.hyperparameters() | {"lr": str(args.lr)}
    return run_training_job(
        work, manifest_lines(train, truth), manifest_lines(validation, truth), hyperparameters, args.threads
    )


def confidence_scores(predictions: BatchPredictions, index: int, threshold: float) -> dict[str, float]:
    """Candidate confidence scores of image ``index`` (the shipped one is ``flip_x_certainty``), with
    ``threshold`` the model's own score threshold (the one its flip agreement and certainty use)."""
    detections = predictions.detections
    scores = detections.scores[index][detections.valid[index] & (detections.scores[index] >= threshold)].tolist()
    flip = float(predictions.flip_agreement[index])
    certainty = float(predictions.decision_certainty[index])
    return {
        "mean_box_score": float(np.mean(scores)) if scores else 0.0,
        "min_box_score": min(scores) if scores else 0.0,
        "decision_certainty": certainty,
        "flip_agreement": flip,
        "flip_x_min_score": flip * (min(scores) if scores else 0.0),
        "flip_x_certainty": float(predictions.confidence[index]),
        "flip_x_sqrt_certainty": flip * certainty**0.5,
    }


def evaluate_held_out(model_dir: Path, corpus_images_: list[CorpusImage], args: argparse.Namespace) -> dict:
    """Held-out mAP, image IoU by difficulty, confidence correlations and inference speed."""
    images = labelled_images(corpus_images_)
    predicted = predict_held_out(model_dir, images, args.threads)
    overall = score_held_out(predicted, images, len(CLASS_NAMES))
    threshold = predicted.score_threshold
    quality = np.array(
        [
            image_miou([b for b in boxes if b.score >= threshold], image.boxes)
            for boxes, image in zip(predicted.boxes, images, strict=True)
        ]
    )
    hard = np.array([image.difficulty == "hard" for image in corpus_images_])

    def subset_map(mask: np.ndarray) -> float:
        chosen = [index for index, keep in enumerate(mask) if keep]
        subset = HeldOutPredictions(
            boxes=[predicted.boxes[i] for i in chosen],
            raw=predicted.raw.select(chosen),
            score_threshold=threshold,
            image_size=predicted.image_size,
            seconds_per_image=predicted.seconds_per_image,
        )
        return score_held_out(subset, [images[i] for i in chosen], len(CLASS_NAMES)).map50

    candidates = [confidence_scores(predicted.raw, index, threshold) for index in range(len(images))]
    correlation: dict[str, dict[str, float]] = {}
    for name in candidates[0]:
        values = np.array([candidate[name] for candidate in candidates])

        def spearman(mask: np.ndarray, values: np.ndarray = values) -> float:
            return float(spearmanr(values[mask], quality[mask]).statistic)

        correlation[name] = {
            "all": spearman(np.ones_like(hard)),
            "easy": spearman(~hard),
            "hard": spearman(hard),
        }
    return {
        "score_threshold": threshold,
        "map50": overall.map50,
        "map50_95": overall.map50_95,
        "map50_easy": subset_map(~hard),
        "map50_hard": subset_map(hard),
        "miou": overall.miou,
        "miou_easy": float(quality[~hard].mean()),
        "miou_hard": float(quality[hard].mean()),
        "inference_seconds_per_image_with_flip": overall.seconds_per_image,
        "confidence_spearman": correlation,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--train-images", type=int, default=500)
    parser.add_argument("--validation-images", type=int, default=100)
    parser.add_argument("--held-out-images", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (steps follow the data)")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="safety stop only")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("docs/benchmarks/detector-cpu.json"), help="results file")
    parser.add_argument("--skip-training", action="store_true", help="evaluate the model already in --work")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = args.work
    train_images = corpus(work / "corpus-train", args.train_images, seed=101)
    validation_images = corpus(work / "corpus-validation", args.validation_images, seed=102)
    held_out = corpus(work / "corpus-held-out", args.held_out_images, seed=103)
    training_seconds = None if args.skip_training else run_training(work, train_images, validation_images, args)
    report = {
        **run_header("detector-cpu"),
        "settings": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "training_job_seconds": training_seconds,
        "validation": json.loads((work / "output" / "metrics.json").read_text()),
        "held_out": evaluate_held_out(work / "model", held_out, args),
        "load_average_1min": os.getloadavg()[0],
    }
    print(json.dumps(report, indent=2))
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
