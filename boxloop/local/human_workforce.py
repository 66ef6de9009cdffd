"""The simulated workforce driver: the local stand-in for the human-review consumer Lambda, and only it.

On AWS the consumer Lambda reads the human-review queue message ``{run_id, iteration, bucket,
tasks_key, task_token}``, records the batch item and starts one A2I human loop per task; A2I
writes an ``output.json`` per loop under ``a2i-output/`` and the human-answer Lambda takes it
from there. Locally ``SimulatedHumanReview`` polls the same queue, records the batch item with
the consumer's own adapter (``lambdas.adapters.runs.record_human_batch``), answers every task
with ``boxloop.workforce.SimulatedWorkforce`` from known truth (keyed by image id), and writes
the A2I-format ``output.json`` objects at
``a2i-output/<flow-definition-name>/YYYY/MM/DD/hh/mm/ss/<human-loop-name>/output.json``. The
real human-answer Lambda then runs unchanged (S3 notification), applies QC, charges the time
and resumes the state machine.

A task whose image has no known truth cannot be answered: the batch fails with
``SendTaskFailure`` (error ``SimulatedWorkforce.NoTruth``) naming the images, and the state
machine's Catch records the failure.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from pydantic import BaseModel

from boxloop.config import LabelingConfig
from boxloop.corpus import load_truth
from boxloop.human_loop import human_loop_input, human_loop_name
from boxloop.layout import a2i_output_key
from boxloop.local.process_environment import PROCESS_ENVIRONMENT
from boxloop.local.resources import HUMAN_REVIEW_CONSUMER_HANDLER, LocalResources
from boxloop.models import Box, HumanTask
from boxloop.workforce import SimulatedWorkforce
from lambdas.adapters.executions import send_task_success
from lambdas.adapters.runs import mark_batch_success_sent, record_human_batch
from lambdas.human_review.requests import HumanReviewRequest, read_tasks

NO_TRUTH_ERROR = "SimulatedWorkforce.NoTruth"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


class BatchAnswered(BaseModel):
    """What the workforce did with one queue message."""

    run_id: str
    iteration: int
    tasks: int
    answers: int
    human_seconds: float


def image_files(images_dir: Path) -> list[Path]:
    """Every file under ``images_dir`` (sorted); the local run uploads them all, bad ones included."""
    return sorted(path for path in images_dir.rglob("*") if path.is_file() and not path.name.startswith("."))


def truth_by_image_id(images_dir: Path, truth_path: Path) -> dict[str, list[Box]]:
    """Known boxes per image id (SHA-256 of the bytes) for the files under ``images_dir``.

    COCO ``file_name`` values are matched to paths relative to ``images_dir``. Files the
    truth file does not name get no entry (asking humans about them fails the batch).
    """
    by_name = load_truth(truth_path, key="file_name")
    truth = {}
    for path in image_files(images_dir):
        name = path.relative_to(images_dir).as_posix()
        if name in by_name:
            truth[hashlib.sha256(path.read_bytes()).hexdigest()] = by_name[name]
    return truth


POLL_RETRY_SECONDS = 1.0
"""The pause before polling again after a receive failed."""


def _client(service: str) -> Any:
    """A boto3 client, created while no invocation restores the shared environment (creation iterates it)."""
    with PROCESS_ENVIRONMENT.steady():
        return boto3.client(service)


class SimulatedHumanReview:
    """Answers human-review requests from the queue with a simulated workforce (a polling thread)."""

    def __init__(
        self,
        resources: LocalResources,
        config: LabelingConfig,
        workforce: SimulatedWorkforce,
        truth: Mapping[str, Sequence[Box]],
        answer_threads: int = 4,
    ) -> None:
        self._resources = resources
        self._config = config
        self._workforce = workforce
        self._truth = truth
        self._answer_threads = answer_threads
        self._environment = resources.function_environment[HUMAN_REVIEW_CONSUMER_HANDLER]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sqs: Any = None  # one client for every poll: creating one reads the whole process environment
        self.batches: list[BatchAnswered] = []
        self.asked_image_ids: list[str] = []
        self.errors: list[str] = []

    # ------------------------------------------------------------ one request
    def _answer_document(self, request: HumanReviewRequest, task: HumanTask, now: datetime) -> tuple[str, dict]:
        loop_name = human_loop_name(request.run_id, request.iteration, task.image_id)
        loop_input = human_loop_input(task, self._config.classes, request.run_id, request.iteration, request.tasks_key)
        answers = []
        workers = self._config.qc.workers_per_image
        for worker in range(workers):
            # asks in later iterations (gold images, re-queued images) go to other workers, as on A2I
            answer = self._workforce.answer(
                task.image_id,
                task.width,
                task.height,
                prefill=task.prefill or None,
                attempt=request.iteration * workers + worker,
            )
            answers.append(
                {
                    "answerContent": {
                        "annotatedResult": {
                            "boundingBoxes": [
                                {
                                    "label": self._config.classes[box.class_id],
                                    "left": box.left,
                                    "top": box.top,
                                    "width": box.width,
                                    "height": box.height,
                                }
                                for box in answer.boxes
                            ],
                            "inputImageProperties": {"width": task.width, "height": task.height},
                        }
                    },
                    "workerId": answer.worker_id,
                    "timeSpentInSeconds": answer.time_spent_seconds,
                    "acceptanceTime": (now - timedelta(seconds=answer.time_spent_seconds)).isoformat(),
                    "submissionTime": now.isoformat(),
                }
            )
        document = {
            "flowDefinitionArn": self._resources.flow_definition_arn,
            "humanLoopName": loop_name,
            "humanAnswers": answers,
            "inputContent": loop_input.model_dump(mode="json"),
        }
        return a2i_output_key(self._resources.flow_definition_name, loop_name, now), document

    def handle(self, request: HumanReviewRequest) -> BatchAnswered:
        """Record the batch, answer every task, write the A2I outputs (the answer Lambda runs on each)."""
        with PROCESS_ENVIRONMENT.applied(self._environment, owner="the simulated workforce"):
            tasks = read_tasks(request.bucket, request.tasks_key)
            record_human_batch(request.run_id, request.iteration, request.task_token, expected=len(tasks))
            if not tasks:
                send_task_success(request.task_token, {"answered": 0, "rejected": 0})
                mark_batch_success_sent(request.run_id, request.iteration)
        unknown = sorted({task.image_id for task in tasks if task.image_id not in self._truth})
        if unknown:
            _client("stepfunctions").send_task_failure(
                taskToken=request.task_token,
                error=NO_TRUTH_ERROR,
                cause=f"no known truth for {len(unknown)} image(s) sent to humans, e.g. {', '.join(unknown[:3])}",
            )
            raise KeyError(f"iteration {request.iteration}: no known truth for images {unknown[:3]}")
        now = datetime.now(UTC)
        documents = [self._answer_document(request, task, now) for task in tasks]
        with self._lock:
            self.asked_image_ids.extend(task.image_id for task in tasks)
        s3 = _client("s3")
        with ThreadPoolExecutor(max_workers=self._answer_threads) as pool:
            list(
                pool.map(
                    lambda item: s3.put_object(Bucket=request.bucket, Key=item[0], Body=json.dumps(item[1]).encode()),
                    documents,
                )
            )
        seconds = sum(answer["timeSpentInSeconds"] for _, document in documents for answer in document["humanAnswers"])
        batch = BatchAnswered(
            run_id=request.run_id,
            iteration=request.iteration,
            tasks=len(tasks),
            answers=sum(len(document["humanAnswers"]) for _, document in documents),
            human_seconds=round(seconds, 2),
        )
        with self._lock:
            self.batches.append(batch)
        return batch

    # ------------------------------------------------------------ the queue
    def poll_once(self, wait_seconds: int = 1) -> int:
        """Receive and handle at most one message; returns how many were handled."""
        if self._sqs is None:
            self._sqs = _client("sqs")
        sqs = self._sqs
        queue_url = self._resources.human_review_queue_url
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=wait_seconds).get(
            "Messages", []
        )
        for message in messages:
            try:
                self.handle(HumanReviewRequest.model_validate_json(message["Body"]))
            except Exception as exc:  # recorded for the run driver to report; the message is not retried
                with self._lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # a failed receive: reported, and polling goes on (the batch waits in the queue)
                with self._lock:
                    self.errors.append(
                        f"receiving from the human-review queue failed, retrying: {type(exc).__name__}: {exc}"
                    )
                self._stop.wait(POLL_RETRY_SECONDS)

    def start(self) -> None:
        """Start answering in a background thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="simulated-workforce", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (after the request it is handling, if any)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def __enter__(self) -> SimulatedHumanReview:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
