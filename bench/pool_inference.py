"""Pool inference throughput, stage by stage, on CPU or CUDA (a benchmark, not a test).

Generates a corpus of synthetic JPEGs (``--source-size`` px, textured, with coloured boxes), then measures:

* decode only: fetch + JPEG decode (reduced-scale where the canvas is smaller) + letterbox through the pool
  inference loader, images/s;
* forward only: the plain and mirrored pass on preloaded canvases, images/s;
* model: forward + decode + batched post-processing (``Predictor.run``: forward passes of the batch size,
  post-processing for ``postprocess_group_size`` images at once, as pool inference runs them), images/s;
* post-processing only: decode, flip fusion, confidence and JSON serialisation of precomputed forward outputs,
  in the same groups, ms/image (the best of ``POSTPROCESS_PASSES`` passes: a steady per-image cost, not one
  pass's noise);
* end to end: ``predict_lines`` over the files (the SageMaker handler's path), images/s (forward, model and end to
  end are each the best of ``RATE_PASSES`` passes);
* end to end from a local S3 endpoint, without delay and with a delay of ``--get-latency-ms`` before every GET,
  images/s, and their ratio (the same client, connections and worker start in both, so the ratio is what the
  latency costs; the endpoint is a separate process, as S3 is remote: serving the objects costs the measured
  process nothing);
* training step breakdown (``--training-steps``): data, augmentation, targets, forward + backward, optimizer.

The detector is the shipped architecture with its ImageNet backbone and untrained heads; its score threshold is set
so that about ``--boxes-per-image`` boxes per image pass (what a trained model reports), so post-processing does a
trained model's work. ``--model-dir`` uses a trained model instead.

    .venv/bin/python bench/pool_inference.py --quick
    .venv/bin/python bench/pool_inference.py --images 300 --image-size 256
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from boxloop.models import ImageRecord
from sagemaker_jobs.data import ImageSource, augment, image_loader, normalise
from sagemaker_jobs.inference import default_batch_size, default_decode_workers
from sagemaker_jobs.model import OUTPUT_STRIDE, DetectorConfig, build_detector, load_model
from sagemaker_jobs.predictor import Predictor, postprocess_group_size, predict_lines, serialise_batch
from sagemaker_jobs.targets import box_loss, build_targets, focal_loss

POSTPROCESS_PASSES = 3
RATE_PASSES = 2
"""Forward, model and end to end are each the best of this many passes: the goal compares end to end with the
model, so one pass's swing on a shared host must not decide the ratio."""
CLASSES = ["red", "green", "blue", "yellow", "cyan", "magenta"]
_COLOURS = [(220, 40, 40), (40, 200, 60), (40, 60, 220), (230, 210, 40), (40, 210, 220), (210, 50, 210)]


def write_corpus(directory: Path, count: int, size: int, seed: int) -> list[Path]:
    """``count`` JPEGs of ``size`` px (quality 90): a noisy gradient with 1–5 coloured, shaded boxes."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    paths = []
    for index in range(count):
        base = rng.uniform(90, 200, 3).astype(np.float32)
        pixels = base + 40 * ramp[None, :, None] * rng.uniform(-1, 1, 3) + rng.normal(0, 12, (size, size, 3))
        for _ in range(int(rng.integers(1, 6))):
            width, height = (int(v) for v in rng.integers(size // 10, size // 2, 2))
            left, top = int(rng.integers(0, size - width)), int(rng.integers(0, size - height))
            shade = np.linspace(0.8, 1.1, height, dtype=np.float32)[:, None, None]
            pixels[top : top + height, left : left + width] = np.array(_COLOURS[int(rng.integers(6))]) * shade
        path = directory / f"{index:05d}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def records_for(refs: list[str], size: int) -> list[ImageRecord]:
    """Pool records for ``refs`` (all ``size`` × ``size``)."""
    registered = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        ImageRecord(image_id=f"{index:064x}", source_ref=ref, width=size, height=size, registered_at=registered)
        for index, ref in enumerate(refs)
    ]


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(function: Callable[[], object], device: torch.device) -> float:
    """Seconds ``function`` takes, the device's queued work included."""
    _synchronise(device)
    started = time.perf_counter()
    function()
    _synchronise(device)
    return time.perf_counter() - started


def best_of(passes: int, function: Callable[[], object], device: torch.device) -> float:
    """The fewest seconds ``function`` takes over ``passes`` runs."""
    return min(timed(function, device) for _ in range(passes))


def build_predictor(args: argparse.Namespace, device: torch.device, sample: torch.Tensor) -> Predictor:
    """The trained model at ``--model-dir``, or the shipped architecture with its threshold set so that about
    ``--boxes-per-image`` boxes pass on ``sample``."""
    if args.model_dir:
        return Predictor(load_model(args.model_dir), device)
    torch.manual_seed(0)
    config = DetectorConfig(class_names=CLASSES, image_size=args.image_size, model_version="bench")
    predictor = Predictor(build_detector(config, pretrained_backbone=True), device)
    result = predictor.run(sample.to(device))
    scores = result.detections.scores[result.detections.valid].sort(descending=True).values
    rank = min(len(scores) - 1, args.boxes_per_image * sample.shape[0])
    predictor.config = config.model_copy(update={"score_threshold": round(float(scores[rank]), 4)})
    return predictor


class DelayedObjects(BaseHTTPRequestHandler):
    """GET ``/<bucket>/<name>`` answers the file ``name`` of ``directory`` after ``delay`` seconds (S3's shape)."""

    directory: Path
    delay: float
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        time.sleep(self.delay)
        path = self.directory / Path(self.path.split("?")[0]).name
        if not path.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"0"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def serve_delayed_objects(directory: Path, delay: float, ports: multiprocessing.Queue) -> None:
    """Serve ``directory`` as an S3 bucket with ``delay`` seconds per GET on a free port (put on ``ports``)."""
    handler = type("Handler", (DelayedObjects,), {"directory": directory, "delay": delay})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    ports.put(server.server_address[1])
    server.serve_forever()


def end_to_end_from_s3(
    latency_ms: float, predictor: Predictor, corpus: Path, size: int, count: int, batch: int, workers: int
) -> float:
    """Images/s of ``predict_lines`` reading s3:// references from a local endpoint that waits ``latency_ms``
    before answering each GET."""
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    server = context.Process(target=serve_delayed_objects, args=(corpus, latency_ms / 1000, ports), daemon=True)
    server.start()
    port = ports.get(timeout=60)
    saved = {key: os.environ.get(key) for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        records = records_for([f"s3://pool/{index:05d}.jpg" for index in range(count)], size)
        lines: list[str] = []
        seconds = timed(lambda: lines.extend(predict_lines(predictor, records, batch, workers)), predictor.device)
        failed = [line for line in lines if '"error":null' not in line]
        if failed:
            raise RuntimeError(f"{len(failed)} reads failed through the local endpoint, e.g. {failed[0][:300]}")
        return count / seconds
    finally:
        server.terminate()
        server.join()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def training_breakdown(args: argparse.Namespace, device: torch.device, canvases: torch.Tensor) -> dict[str, float]:
    """Milliseconds per image of each part of a training step (the steps ``sagemaker_jobs.train`` takes)."""
    config = DetectorConfig(class_names=CLASSES, image_size=args.image_size)
    model = build_detector(config, pretrained_backbone=True).to(device).train()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    generator = torch.Generator().manual_seed(0)
    batch = min(args.train_batch_size, canvases.shape[0])
    size = args.image_size
    boxes = torch.tensor([[[0.1, 0.1, 0.4, 0.5], [0.5, 0.3, 0.9, 0.8]]]).repeat(batch, 1, 1) * size
    classes = torch.tensor([[0, 1]]).repeat(batch, 1)
    totals = dict.fromkeys(("data", "augmentation", "targets", "forward_backward", "optimizer"), 0.0)
    for step in range(args.training_steps + 1):
        rows = torch.randperm(canvases.shape[0], generator=generator)[:batch]
        parts: dict[str, float] = {}
        start = time.perf_counter()
        images = normalise(canvases[rows].to(device, non_blocking=True))
        _synchronise(device)
        parts["data"] = time.perf_counter() - start
        start = time.perf_counter()
        images, moved, valid = augment(images, boxes.to(device), torch.ones(batch, 2, device=device), generator)
        _synchronise(device)
        parts["augmentation"] = time.perf_counter() - start
        start = time.perf_counter()
        targets = build_targets(moved, classes.to(device), valid, len(CLASSES), size // OUTPUT_STRIDE, OUTPUT_STRIDE)
        _synchronise(device)
        parts["targets"] = time.perf_counter() - start
        start = time.perf_counter()
        if device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast("cuda", dtype=torch.float16, enabled=device.type == "cuda")
        with autocast:
            heatmap_logits, distances, _ = model(images)
        loss = focal_loss(heatmap_logits, targets[0]) + 5.0 * box_loss(distances, targets[1], targets[2], OUTPUT_STRIDE)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        _synchronise(device)
        parts["forward_backward"] = time.perf_counter() - start
        start = time.perf_counter()
        scaler.step(optimizer)
        scaler.update()
        _synchronise(device)
        parts["optimizer"] = time.perf_counter() - start
        if step:  # the first step warms up allocators and kernels
            for name, seconds in parts.items():
                totals[name] += seconds
    per_image = {name: 1000 * seconds / (args.training_steps * batch) for name, seconds in totals.items()}
    return per_image | {"images_per_second": 1000 / sum(per_image.values()), "batch_size": batch}


def machine(device: torch.device) -> dict[str, object]:
    """What ran the benchmark."""
    described = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": str(device),
        "load_average_1min_at_start": os.getloadavg()[0],
    }
    cpuinfo = Path("/proc/cpuinfo")
    models = (
        [line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")] if cpuinfo.exists() else []
    )
    if models:
        described["cpu"] = models[0].split(":", 1)[1].strip()
    if device.type == "cuda":
        described["gpu"] = torch.cuda.get_device_name(device)
    return described


def run(args: argparse.Namespace) -> dict[str, object]:
    """Every stage's figure for one corpus."""
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    batch = args.batch_size or default_batch_size(device)
    workers = default_decode_workers(device) if args.workers is None else args.workers
    with tempfile.TemporaryDirectory(prefix="pool-inference-") as scratch:
        corpus = Path(scratch) / "corpus"
        paths = write_corpus(corpus, args.images, args.source_size, seed=1)
        sources = [ImageSource(str(path)) for path in paths]
        canvases_list, scales, sizes = [], [], []
        decode_seconds = time.perf_counter()
        for loaded in image_loader(sources, args.image_size, batch, workers):
            canvases_list.append(loaded["image"])
            scales.append(loaded["scale"])
            sizes.append(loaded["width"])
        decode_seconds = time.perf_counter() - decode_seconds
        canvases = torch.cat(canvases_list)
        predictor = build_predictor(args, device, canvases[: min(batch, 32)])
        config = predictor.config
        chunks = [canvases[start : start + batch] for start in range(0, len(canvases), batch)]
        group = postprocess_group_size(batch)  # the product post-processes this many images per call
        starts = range(0, len(canvases), group)
        groups = [canvases[start : start + group] for start in starts]
        predictor.run(chunks[0].to(device))  # warm-up (cuDNN autotuning, allocator)
        forward_seconds = best_of(RATE_PASSES, lambda: [predictor.forward(chunk) for chunk in chunks], device)
        model_seconds = best_of(
            RATE_PASSES, lambda: [predictor.run(images, forward_batch_size=batch) for images in groups], device
        )
        outputs = [predictor.forward_in_parts(images, batch) for images in groups]
        all_scales, all_sizes = torch.cat(scales), torch.cat(sizes)
        loaded_groups = [
            {
                "scale": all_scales[start : start + len(images)],
                "width": all_sizes[start : start + len(images)],
                "height": all_sizes[start : start + len(images)],
                "error": [""] * len(images),
            }
            for start, images in zip(starts, groups, strict=True)
        ]
        records = records_for([str(path) for path in paths], args.source_size)

        def postprocess_all() -> None:
            for output, images, loaded, start in zip(outputs, groups, loaded_groups, starts, strict=True):
                predictions = predictor.postprocess(output, len(images))
                rows = records[start : start + len(images)]
                for _ in serialise_batch(predictions, loaded, rows, config.score_threshold, config.model_version):
                    pass

        postprocess_seconds = best_of(POSTPROCESS_PASSES, postprocess_all, device)
        lines: list[str] = []

        def end_to_end() -> None:
            lines[:] = predict_lines(predictor, records, batch, workers)

        end_to_end_seconds = best_of(RATE_PASSES, end_to_end, device)
        boxes = sum(line.count('"class_id"') for line in lines)
        from_s3 = {
            latency: end_to_end_from_s3(latency, predictor, corpus, args.source_size, len(paths), batch, workers)
            for latency in (0.0, args.get_latency_ms)
        }
    count = len(paths)
    rates = {
        "decode_only": count / decode_seconds,
        "forward_only": count / forward_seconds,
        "model_forward_decode_postprocess": count / model_seconds,
        "end_to_end": count / end_to_end_seconds,
        "end_to_end_s3_0ms_per_get": from_s3[0.0],
        f"end_to_end_s3_{args.get_latency_ms:g}ms_per_get": from_s3[args.get_latency_ms],
    }
    report = {
        "machine": machine(device),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "images": count,
        "source_size": args.source_size,
        "image_size": args.image_size,
        "batch_size": batch,
        "postprocess_group_size": group,
        "decode_workers": workers,
        "score_threshold": config.score_threshold,
        "boxes_per_image": boxes / count,
        "images_per_second": {name: round(rate, 1) for name, rate in rates.items()},
        "postprocess_ms_per_image": round(1000 * postprocess_seconds / count, 3),
        "end_to_end_over_min_decode_model": round(
            rates["end_to_end"] / min(rates["decode_only"], rates["model_forward_decode_postprocess"]), 3
        ),
        "latency_over_no_latency": round(from_s3[args.get_latency_ms] / from_s3[0.0], 3),
        "latency_over_local_files": round(from_s3[args.get_latency_ms] / rates["end_to_end"], 3),
    }
    if args.training_steps:
        report["training_ms_per_image"] = {
            name: round(value, 3) for name, value in training_breakdown(args, device, canvases).items()
        }
    report["machine"]["load_average_1min_at_end"] = os.getloadavg()[0]  # type: ignore[index]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small corpus and two training steps (a smoke run)")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--source-size", type=int, default=512, help="side of the generated JPEGs")
    parser.add_argument("--image-size", type=int, default=256, help="the detector's canvas")
    parser.add_argument("--batch-size", type=int, help="default: sagemaker_jobs.inference.default_batch_size")
    parser.add_argument("--workers", type=int, help="default: sagemaker_jobs.inference.default_decode_workers")
    parser.add_argument("--get-latency-ms", type=float, default=30.0)
    parser.add_argument("--boxes-per-image", type=int, default=4)
    parser.add_argument("--model-dir", type=Path, help="a trained model instead of the untrained heads")
    parser.add_argument("--training-steps", type=int, default=5)
    parser.add_argument("--train-batch-size", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--output", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.training_steps = min(args.images, 48), min(args.training_steps, 2)
    if args.threads:
        torch.set_num_threads(args.threads)
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
