"""End to end in a real browser: ``boxloop run --workforce browser`` on a tiny corpus, labelled through the page.

One run (``boxloop run`` as a subprocess: the stack on the embedded AWS, the labelling app on a free port)
on 40 generated 96 px images with the tiny detector. Debian's Chromium, driven by Playwright, labels every
task the run asks for: in the initial sample it draws each object's box with a mouse drag from the known
truth; in the later iteration it adjusts a pre-filled box (class by the keyboard, moved and resized by
drags), deletes the other pre-filled boxes and draws the missing ones. The run's manifest must hold the
boxes in original-image pixels within 2 px of what was drawn, QC must pass, the human time charged must
be the active seconds the page measured and sent, and the run must complete.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from boxloop.corpus import CLASS_NAMES, CorpusSpec, generate_corpus
from boxloop.local.human_workforce import truth_by_image_id
from boxloop.models import Box, IterationMetrics, LabelSource
from tests.output_readers import read_manifest_file
from tests.web.conftest import VIEWPORT

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = PROJECT_ROOT / "docs" / "labelling-run.png"
FAILURE_SCREENSHOT = Path(tempfile.gettempdir()) / "boxloop-labelling-run-failure.png"
N_IMAGES, IMAGE_SIZE = 40, 96
TOLERANCE_PX = 2.0
EDGE_INSET_PX = 0.5
CONFIG = {
    "classes": list(CLASS_NAMES),
    "quality": {"target_miou": 0.6, "delta": 0.05, "min_validation_images": 5},
    "human_budget_hours": 2.0,
    "initial_sample_size": 12,
    "validation_share": 0.5,
    "human_batch_size": 6,
    "audit_size": 2,
    "max_iterations": 1,
    "min_images_to_start": N_IMAGES,
    "workforce": {"kind": "browser", "batch_timeout_seconds": 900},
}
TRAINING = ["--detector", "tiny", "--epochs", "7", "--min-steps", "1", "--train-seconds", "60"]
"""The training this run was written against (7 epochs of its few training images, no step floor): its later
iteration must show pre-filled boxes to adjust, and with the local default floor of 100 steps it showed none (fresh
clone CI, 2026-11-30)."""
APP_URL = re.compile(r"people label in the browser at (http://\S+)")
APP_START_TIMEOUT = 180
RUN_TIMEOUT = 720
TASK_TIMEOUT_MS = 20_000
DRAWN_MS = 5_000
HOLD_MS = 320


@dataclass
class Labelled:
    """What the browser did: the boxes each accepted answer carried (by image-id prefix) and its active seconds."""

    answers: dict[str, list[dict]] = field(default_factory=dict)
    active_seconds: list[float] = field(default_factory=list)
    adjusted: int = 0
    iterations: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class BrowserRun:
    run_dir: Path
    log: str
    labelled: Labelled
    truth: dict[str, list[Box]]


def _image_part(task_id: str) -> str:
    """The image-id prefix a task id carries (``i<NNNN>-<16 hex of the image id>-<digest>``)."""
    return task_id.split("-")[1]


def _iteration(task_id: str) -> int:
    return int(task_id.split("-")[0].removeprefix("i"))


def _to_screen(page, x: float, y: float) -> tuple[float, float]:
    """The screen point of original pixel (x, y), kept half a pixel inside the image (a drag ends on the image)."""
    x, y = (min(max(value, EDGE_INSET_PX), IMAGE_SIZE - EDGE_INSET_PX) for value in (x, y))
    rect = page.locator("#image").bounding_box()
    return rect["x"] + x * rect["width"] / IMAGE_SIZE, rect["y"] + y * rect["height"] / IMAGE_SIZE


def _settle(page) -> None:
    """Wait two animation frames: the editor has handled the input before it is asked for the boxes."""
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def _drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A drag held like a person's: Annotorious takes a drag shorter than 300 ms over under 100 image pixels²
    for a click."""
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.wait_for_timeout(HOLD_MS)
    page.mouse.up()
    _settle(page)


def _wait_for_box_count(page, count: int) -> None:
    page.wait_for_function(f"() => window.boxloop.currentBoxes().length === {count}", timeout=DRAWN_MS)


def _class_key(class_id: int) -> str:
    return "0" if class_id == 9 else str(class_id + 1)


def _boxes(page) -> list[dict]:
    return page.evaluate("window.boxloop.currentBoxes()")


def _draw(page, box: Box) -> None:
    """Draw ``box`` (original pixels) with a drag, in its class chosen by the keyboard."""
    before = len(_boxes(page))
    page.keyboard.press("Escape")
    page.keyboard.press(_class_key(box.class_id))
    _drag(page, _to_screen(page, box.left, box.top), _to_screen(page, box.left + box.width, box.top + box.height))
    try:
        _wait_for_box_count(page, before + 1)
    except PlaywrightTimeoutError:
        page.screenshot(path=str(FAILURE_SCREENSHOT))
        pytest.fail(f"the drag for {box} drew no box (screenshot: {FAILURE_SCREENSHOT})")


def _select(page, position: int) -> None:
    page.locator("#box-list li").nth(position).click()
    page.wait_for_function(
        f"() => document.querySelectorAll('#box-list li')[{position}].classList.contains('selected')"
    )


def _adjust_prefilled(page, target: Box) -> None:
    """Make the largest pre-filled box ``target``: its class by the keyboard, then move and resize it by drags."""
    boxes = _boxes(page)
    largest = max(range(len(boxes)), key=lambda i: boxes[i]["width"] * boxes[i]["height"])
    for position in reversed(range(len(boxes))):  # the other pre-filled boxes go
        if position != largest:
            _select(page, position)
            page.keyboard.press("Delete")
    _wait_for_box_count(page, 1)
    [box] = _boxes(page)
    _select(page, 0)
    page.keyboard.press(_class_key(target.class_id))
    _settle(page)
    centre = (box["left"] + box["width"] / 2, box["top"] + box["height"] / 2)
    moved = (centre[0] + target.left - box["left"], centre[1] + target.top - box["top"])
    _drag(page, _to_screen(page, *centre), _to_screen(page, *moved))
    corner = (target.left + box["width"], target.top + box["height"])
    _drag(page, _to_screen(page, *corner), _to_screen(page, target.left + target.width, target.top + target.height))
    [adjusted] = _boxes(page)
    assert adjusted["class_id"] == target.class_id
    for key in ("left", "top", "width", "height"):
        assert abs(adjusted[key] - getattr(target, key)) <= TOLERANCE_PX, (key, adjusted, target)


def _label(page, task_id: str, truth: list[Box], labelled: Labelled) -> None:
    """Answer the open task with the truth's boxes; a task without objects is answered "no objects"."""
    prefilled = _boxes(page)
    remaining = sorted(truth, key=lambda box: box.width * box.height, reverse=True)
    if prefilled and remaining:
        _adjust_prefilled(page, remaining.pop(0))
        labelled.adjusted += 1
    elif prefilled:
        for left in reversed(range(len(prefilled))):
            _select(page, 0)
            page.keyboard.press("Delete")
            _wait_for_box_count(page, left)
    for box in remaining:
        _draw(page, box)
    if truth:
        page.keyboard.press("Enter")
    else:
        page.keyboard.press("e")
        page.locator("#dialog-confirm").click()
    page.wait_for_function(
        f"() => window.boxloop.taskId() !== {task_id!r} || !document.getElementById('errors').hidden",
        timeout=TASK_TIMEOUT_MS,
    )
    errors = page.locator("#errors")
    assert errors.is_hidden(), f"the answer to {task_id} was refused: {errors.inner_text()}"


def _record_answers(page, labelled: Labelled) -> None:
    def on_response(response) -> None:
        request = response.request
        if request.method == "POST" and request.url.endswith("/answer") and response.status == 200:
            answer = request.post_data_json
            task_id = request.url.rsplit("/", 2)[-2]
            labelled.answers[_image_part(task_id)] = answer["boxes"]
            labelled.active_seconds.append(answer["active_seconds"])
            labelled.iterations.add(_iteration(task_id))

    page.on("response", on_response)


def _wait_for_app(process: subprocess.Popen, log_path: Path) -> str:
    deadline = time.monotonic() + APP_START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        if match := APP_URL.search(log_path.read_text()):
            return match[1]
        time.sleep(0.5)
    process.kill()
    pytest.fail(f"the labelling app did not start:\n{log_path.read_text()[-3000:]}")


def _label_until_done(page, process: subprocess.Popen, truth_by_part: dict[str, list[Box]], labelled: Labelled):
    deadline = time.monotonic() + RUN_TIMEOUT
    screenshot_due = os.environ.get("BOXLOOP_SCREENSHOTS") == "1"
    while process.poll() is None:
        assert time.monotonic() < deadline, "the run did not finish in time"
        task_id = page.evaluate("window.boxloop ? window.boxloop.taskId() : null")
        if task_id is None or _image_part(task_id) in labelled.answers:
            time.sleep(0.5)
            continue
        if screenshot_due and _boxes(page):
            page.mouse.move(*_to_screen(page, IMAGE_SIZE - 2, IMAGE_SIZE - 2))
            page.screenshot(path=str(SCREENSHOT))
            screenshot_due = False
        _label(page, task_id, truth_by_part[_image_part(task_id)], labelled)


@pytest.fixture(scope="module")
def browser_run(tmp_path_factory: pytest.TempPathFactory, browser, dist) -> BrowserRun:
    root = tmp_path_factory.mktemp("browser-run")
    corpus = root / "corpus"
    generate_corpus(CorpusSpec(n_images=N_IMAGES, image_size=IMAGE_SIZE, seed=5), corpus, workers=1)
    truth = truth_by_image_id(corpus / "images", corpus / "truth.json")
    truth_by_part = {image_id[:16]: boxes for image_id, boxes in truth.items()}
    config = root / "labeling.json"
    config.write_text(json.dumps(CONFIG))
    command = [
        sys.executable, "-m", "boxloop.cli", "run", "--images", str(corpus / "images"), "--truth",
        str(corpus / "truth.json"), "--workforce", "browser", "--config", str(config), "--out", str(root / "out"),
        "--port", "0", *TRAINING,
    ]  # fmt: skip
    log_path = root / "run.log"
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    labelled = Labelled()
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = _wait_for_app(process, log_path)
            context = browser.new_context(viewport=VIEWPORT)
            context.add_init_script("localStorage.setItem('boxloop.worker', 'ada')")
            page = context.new_page()
            page.set_default_timeout(TASK_TIMEOUT_MS)
            _record_answers(page, labelled)
            page.goto(url)
            _label_until_done(page, process, truth_by_part, labelled)
            context.close()
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
    output = log_path.read_text()
    assert process.returncode == 0, output[-3000:]
    return BrowserRun((root / "out" / "latest").resolve(), output, labelled, truth)


@pytest.mark.timeout(1200)
def test_the_run_completes_on_the_answers_given_in_the_page(browser_run: BrowserRun) -> None:
    assert f"run {browser_run.run_dir.name} finished" in browser_run.log
    assert 0 in browser_run.labelled.iterations and len(browser_run.labelled.iterations) >= 2
    assert browser_run.labelled.adjusted >= 1, "no later task showed a pre-filled box to adjust"
    records = list(read_manifest_file(browser_run.run_dir / "output.manifest", "bounding-box"))
    assert len({record.image_id for record in records}) == len(records) > 0


@pytest.mark.timeout(1200)
def test_labels_land_in_original_pixels_within_two_pixels_of_the_drawing(browser_run: BrowserRun) -> None:
    records = list(read_manifest_file(browser_run.run_dir / "output.manifest", "bounding-box"))
    human = [record for record in records if record.label_source is not LabelSource.AUTO]
    assert human
    for record in human:
        drawn = browser_run.labelled.answers[record.image_id[:16]]
        truth = browser_run.truth[record.image_id]
        key = lambda box: (box["class_id"], round(box["left"]), round(box["top"]))  # noqa: E731
        stored = sorted((box.model_dump() for box in record.boxes), key=key)
        for expected_boxes in (sorted(drawn, key=key), sorted((box.model_dump() for box in truth), key=key)):
            assert len(stored) == len(expected_boxes), (record.image_id, stored, expected_boxes)
            for actual, expected in zip(stored, expected_boxes, strict=True):
                assert actual["class_id"] == expected["class_id"], (actual, expected)
                for name in ("left", "top", "width", "height"):
                    assert abs(actual[name] - expected[name]) <= TOLERANCE_PX, (name, actual, expected)


@pytest.mark.timeout(1200)
def test_qc_passes_and_the_budget_is_charged_with_the_measured_active_time(browser_run: BrowserRun) -> None:
    paths = sorted((browser_run.run_dir / "iterations").glob("*/metrics.json"))
    metrics = [IterationMetrics.model_validate_json(path.read_bytes()) for path in paths]
    assert [m.iteration for m in metrics] == list(range(len(metrics))) and len(metrics) >= 2
    assert all(m.rejected_by_qc == 0 and m.unanswered == 0 for m in metrics), [m.model_dump() for m in metrics]
    report = json.loads((browser_run.run_dir / "report.json").read_text())
    sent = browser_run.labelled.active_seconds
    assert sent and all(seconds > 0 for seconds in sent)
    assert report["human_seconds"] == pytest.approx(sum(sent), abs=0.05 * len(sent))
    assert report["human_miou_true"] is not None and report["human_miou_true"] > 0.9
