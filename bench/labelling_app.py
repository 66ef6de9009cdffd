"""The labelling app's own overhead per task, through the real page against a real local run (not a test).

Starts ``boxloop run --workforce browser`` on a generated corpus (the stack on the embedded AWS, the
labelling app on a free port) and labels the initial sample in Debian's Chromium at a fixed pace: on
each task a scripted labeller draws one box, waits ``--pace`` seconds, and presses Enter. What the
app adds is timed around that:

- page load: a reload of the page, once the batch is open, until the task's image is shown again;
- per task: from Enter until the next task's image is shown (the answer's round trip: the API's checks,
  the stored answer and the answer Lambda it triggers; the batch refresh; the claim; the image fetch).

It prints (and with ``--out`` writes as JSON) the p50/p95 of the per-task overhead, the p50 of each API call
in it, and the tasks per minute sustained at that pace, then stops the run.

    .venv/bin/python bench/labelling_app.py --quick
    .venv/bin/python bench/labelling_app.py --tasks 60 --pace 1.0 --out /tmp/labelling-app.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from playwright.sync_api import sync_playwright

from boxloop.corpus import CLASS_NAMES, CorpusSpec, generate_corpus

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
APP_URL = re.compile(r"people label in the browser at (http://\S+)")
APP_START_SECONDS = 600
GOAL_P95_SECONDS = 0.3
IMAGE_SIZE = 256
CALLS = {
    "answer": ("POST", re.compile(r"^/api/tasks/[^/]+/answer$")),
    "batch": ("GET", re.compile(r"^/api/batch$")),
    "claim": ("POST", re.compile(r"^/api/claims$")),
    "image": ("GET", re.compile(r"^/api/images/[^/]+$")),
}
"""The calls between one task's submit and the next task's image, timed one by one."""
NEXT_TASK_SHOWN = """(previous) => {
  const image = document.getElementById('image');
  return window.boxloop && window.boxloop.taskId() !== null && window.boxloop.taskId() !== previous
    && image !== null && image.complete && image.naturalWidth > 0;
}"""


def run_config(tasks: int) -> dict:
    """A run whose initial sample is ``tasks`` images (the batch the labeller works through)."""
    return {
        "classes": list(CLASS_NAMES),
        "human_budget_hours": 100.0,
        "initial_sample_size": tasks,
        "validation_share": 0.5,
        "min_images_to_start": tasks + 10,
        "max_iterations": 1,
        "workforce": {"kind": "browser", "batch_timeout_seconds": 3600},
    }


def start_run(work: Path, tasks: int) -> tuple[subprocess.Popen, Path]:
    corpus = work / "corpus"
    if not (corpus / "truth.json").is_file():
        generate_corpus(CorpusSpec(n_images=tasks + 10, image_size=IMAGE_SIZE, seed=11), corpus, workers=1)
    config = work / "labeling.json"
    config.write_text(json.dumps(run_config(tasks)))
    log_path = work / "run.log"
    command = [
        sys.executable, "-m", "boxloop.cli", "run", "--images", str(corpus / "images"), "--workforce", "browser",
        "--config", str(config), "--out", str(work / "out"), "--port", "0", "--detector", "tiny",
        "--train-seconds", "60",
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    return process, log_path


def app_url(process: subprocess.Popen, log_path: Path) -> str:
    deadline = time.monotonic() + APP_START_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        if match := APP_URL.search(log_path.read_text()):
            return match[1]
        time.sleep(0.5)
    raise SystemExit(f"the labelling app did not start:\n{log_path.read_text()[-3000:]}")


def draw_one_box(page) -> None:
    rect = page.locator("#image").bounding_box()
    x, y = rect["x"] + rect["width"] * 0.3, rect["y"] + rect["height"] * 0.3
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + rect["width"] * 0.3, y + rect["height"] * 0.3, steps=4)
    page.mouse.up()


def label(url: str, tasks: int, pace: float) -> dict:
    """Label ``tasks`` tasks at ``pace`` seconds each; the page-load and per-task overhead seconds."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        context.add_init_script("localStorage.setItem('boxloop.worker', 'bench')")
        page = context.new_page()
        page.set_default_timeout(120_000)
        calls: dict[str, list[float]] = {name: [] for name in CALLS}
        page.on("requestfinished", lambda request: record_call(request, calls))
        page.goto(url)
        page.wait_for_function(NEXT_TASK_SHOWN, arg=None)  # the run has uploaded its images and asks for people
        started = time.perf_counter()
        page.reload()  # the page load, timed on the open batch: the labeller's lease brings the same task back
        page.wait_for_function(NEXT_TASK_SHOWN, arg=None)
        page_load = time.perf_counter() - started
        overheads = []
        labelling_started = time.perf_counter()
        for number in range(tasks):
            task_id = page.evaluate("window.boxloop.taskId()")
            draw_one_box(page)
            time.sleep(pace)
            submitted = time.perf_counter()
            page.keyboard.press("Enter")
            if number == tasks - 1:
                page.wait_for_selector(f'#progress[data-submitted="{tasks}"]')
            else:
                page.wait_for_function(NEXT_TASK_SHOWN, arg=task_id)
            overheads.append(time.perf_counter() - submitted)
        elapsed = time.perf_counter() - labelling_started
        browser.close()
    return {"page_load_seconds": page_load, "overheads": overheads, "labelling_seconds": elapsed, "calls": calls}


def record_call(request, calls: dict[str, list[float]]) -> None:
    """Keep the seconds one of the API calls of a task took, from the request's start to its response's end."""
    path = urlsplit(request.url).path
    name = next(
        (name for name, (method, pattern) in CALLS.items() if request.method == method and pattern.match(path)), None
    )
    if name is not None:
        calls[name].append(request.timing["responseEnd"] / 1000.0)


def summary(measured: dict, tasks: int, pace: float) -> dict:
    overheads = np.asarray(measured["overheads"])
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "tasks": tasks,
        "pace_seconds": pace,
        "page_load_seconds": round(measured["page_load_seconds"], 3),
        "overhead_p50_seconds": round(float(np.percentile(overheads, 50)), 3),
        "overhead_p95_seconds": round(float(np.percentile(overheads, 95)), 3),
        "overhead_max_seconds": round(float(overheads.max()), 3),
        "tasks_per_minute": round(60.0 * tasks / measured["labelling_seconds"], 1),
        "calls_p50_seconds": {
            name: round(float(np.percentile(seconds, 50)), 3) for name, seconds in measured["calls"].items() if seconds
        },
        "goal_p95_seconds": GOAL_P95_SECONDS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=60, help="tasks to label (default 60)")
    parser.add_argument("--pace", type=float, default=1.0, help="seconds the scripted labeller spends per task")
    parser.add_argument("--quick", action="store_true", help="10 tasks at 0.5 s (a smoke run)")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    tasks, pace = (10, 0.5) if args.quick else (args.tasks, args.pace)
    if tasks < 2:
        parser.error("--tasks must be at least 2")
    with tempfile.TemporaryDirectory(prefix="labelling-app-") as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        process, log_path = start_run(work, tasks)
        try:
            measured = label(app_url(process, log_path), tasks, pace)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    figures = summary(measured, tasks, pace)
    print(json.dumps(figures, indent=1))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
