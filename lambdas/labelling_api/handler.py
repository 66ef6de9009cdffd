"""The labelling API Lambda: the page's HTTP API (API Gateway HTTP API, payload 2.0) over the task table.

Routes (``/api`` prefix optional; the contract is in docs/labelling.md):
``GET /batch``, ``GET /tasks``, ``POST /claims``, ``DELETE /claims/{task_id}``, ``GET /tasks/{task_id}``,
``POST /tasks/{task_id}/answer``.

The labeller is the JWT's ``cognito:username`` (``username`` in an access token, else ``sub``) from
API Gateway's authorizer; locally ``boxloop.local.labelling_server`` authenticates the request and
fills the same claims. Only the batch waiting for people (``labelling_tasks.current_batch``) is
served: a task of another batch or run is not found. An accepted answer is stored on its task
(conditional write: once, by the lease holder) and then written once, in A2I's format, to
``answers/<run>/<NNNN>/<task>/output.json``, where the human-answer Lambda QCs it, charges its active
seconds exactly once and resumes the run. A second submit stores and charges nothing (409).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from boxloop.answer_trust import TASK_ID_PATTERN
from boxloop.browser_answers import BrowserAnswer, answer_document, answer_problems
from boxloop.human_loop import human_loop_input
from boxloop.layout import browser_answer_key
from boxloop.models import Box
from boxloop.task_leases import may_answer
from lambdas.adapters import labelling_tasks
from lambdas.adapters.labelling_tasks import ClaimContentionError, CursorError, OpenBatch, StoredTask
from lambdas.adapters.runs import HumanBatch, RunState, get_run_state, human_batch
from lambdas.adapters.storage import presigned_get_url, write_document_once
from lambdas.environment import lambda_environment
from lambdas.labelling_api.models import (
    Accepted,
    BatchCounts,
    BatchView,
    BudgetView,
    Claimed,
    ClassView,
    ErrorBody,
    TaskList,
    TaskListItem,
    TaskView,
)
from lambdas.observability import lambda_handler, logger, metrics

WORKER_CLAIMS = ("cognito:username", "username", "sub")
"""JWT claims naming the labeller, in order of preference (id token, access token, either)."""
DEFAULT_PAGE = 50
RUNNING = "running"


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now
"""The API's clock (tests replace it to move time without sleeping)."""


class ApiError(Exception):
    """An error response of the contract: ``{"error": …, "reasons"?: […]}`` with ``status``."""

    def __init__(self, status: int, error: str, reasons: list[str] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.body = ErrorBody(error=error, reasons=reasons)


def _cors() -> CORSConfig | None:
    origin = lambda_environment().site_origin
    if origin is None:
        return None
    return CORSConfig(allow_origin=origin, allow_headers=["Authorization", "Content-Type", "X-Boxloop-Worker"])


app = APIGatewayHttpResolver(strip_prefixes=["/api"], cors=_cors())


def _error_response(status: int, body: ErrorBody) -> Response:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body.model_dump_json(exclude_none=True)
    )


@app.exception_handler(ApiError)
def _api_error(error: ApiError) -> Response:
    return _error_response(error.status, error.body)


@app.not_found
def _no_route(error: NotFoundError) -> Response:
    event = app.current_event
    return _error_response(404, ErrorBody(error=f"no route {event.request_context.http.method} {event.raw_path}"))


def _worker_id() -> str:
    claims = app.current_event.request_context.authorizer.jwt_claim
    for name in WORKER_CLAIMS:
        value = claims.get(name)
        if value:
            return str(value)
    raise ApiError(401, "the request names no labeller: sign in again")


def _open_batch() -> OpenBatch:
    batch = labelling_tasks.current_batch()
    if batch is None:
        raise ApiError(404, "no batch is waiting for people")
    return batch


def _accepting_answers(state: RunState | None, human: HumanBatch | None) -> bool:
    """Whether the run still waits for the batch: running, and its execution not yet resumed."""
    return state is not None and state.status == RUNNING and (human is None or not human.success_sent)


def _task_of(batch: OpenBatch, task_id: str) -> StoredTask:
    if TASK_ID_PATTERN.fullmatch(task_id) is None:
        raise ApiError(404, f"{task_id!r} is not a task id")
    task = labelling_tasks.get_task(batch, task_id)
    if task is None:
        raise ApiError(404, f"task {task_id} is not in the batch waiting for people")
    return task


def _task_view(task: StoredTask) -> TaskView:
    if task.lease is None:
        raise ValueError(f"task {task.task_id} has no lease to show")
    bucket, _, key = task.task.source_ref.removeprefix("s3://").partition("/")
    return TaskView(
        task_id=task.task_id,
        image_url=presigned_get_url(bucket, key, lambda_environment().image_url_seconds),
        width=task.task.width,
        height=task.task.height,
        boxes=[
            Box(**box.model_dump(include={"class_id", "left", "top", "width", "height"})) for box in task.task.prefill
        ],
        lease_expires_at=task.lease.expires_at,
    )


def _json(model: BaseModel) -> dict:
    return model.model_dump(mode="json")


@app.get("/batch")
def get_batch() -> dict:
    """The batch waiting for people: classes, instructions, progress, the run's budget."""
    _worker_id()
    batch = labelling_tasks.current_batch()
    if batch is None:
        return _json(
            BatchView(
                run_id=None,
                iteration=None,
                batch_open=False,
                classes=[],
                instructions="",
                counts=BatchCounts(total=0, submitted=0, leased=0, open=0),
                budget=BudgetView(hours_total=0.0, hours_used=0.0),
            )
        )
    now = clock()
    human = human_batch(batch.run_id, batch.iteration)
    state = get_run_state(batch.run_id)
    submitted = min(human.done if human else 0, batch.total)
    leased = min(labelling_tasks.live_lease_count(batch, now), batch.total - submitted)
    return _json(
        BatchView(
            run_id=batch.run_id,
            iteration=batch.iteration,
            batch_open=submitted < batch.total and _accepting_answers(state, human),
            classes=[ClassView(id=class_id, name=name) for class_id, name in enumerate(batch.classes)],
            instructions=batch.instructions,
            counts=BatchCounts(
                total=batch.total, submitted=submitted, leased=leased, open=batch.total - submitted - leased
            ),
            budget=BudgetView(
                hours_total=(state.human_budget_seconds if state else 0.0) / 3600.0,
                hours_used=(state.human_seconds_used if state else 0.0) / 3600.0,
            ),
        )
    )


@app.get("/tasks")
def list_tasks() -> dict:
    """One page of the batch's tasks and their status (``limit`` ≤ 100, ``cursor`` from the previous page)."""
    _worker_id()
    batch = _open_batch()
    raw_limit = app.current_event.get_query_string_value("limit", str(DEFAULT_PAGE))
    try:
        limit = int(raw_limit)
    except ValueError:
        raise ApiError(400, f"limit must be a whole number, got {raw_limit!r}") from None
    if not 1 <= limit <= labelling_tasks.MAX_PAGE:
        raise ApiError(400, f"limit must be between 1 and {labelling_tasks.MAX_PAGE}, got {limit}")
    try:
        page = labelling_tasks.list_tasks(batch, limit, app.current_event.get_query_string_value("cursor"), clock())
    except CursorError as exc:
        raise ApiError(400, str(exc)) from None
    items = [TaskListItem(task_id=item.task_id, status=item.status) for item in page.items]
    return _json(TaskList(items=items, next_cursor=page.next_cursor))


@app.post("/claims")
def claim() -> dict | Response:
    """Lease the next open task to the labeller (the one they hold, if any); 204 when none is open."""
    worker = _worker_id()
    batch = _open_batch()
    if not _accepting_answers(get_run_state(batch.run_id), human_batch(batch.run_id, batch.iteration)):
        return Response(status_code=204)
    try:
        task = labelling_tasks.claim_task(batch, worker, clock())
    except ClaimContentionError as exc:
        raise ApiError(409, f"{exc}; try again") from None
    if task is None:
        return Response(status_code=204)
    metrics.add_metric(name="LabellingClaims", unit=MetricUnit.Count, value=1)
    return _json(Claimed(task=_task_view(task)))


@app.delete("/claims/<task_id>")
def release(task_id: str) -> Response:
    """Give back the labeller's lease on the task (a skip): 204, also when they hold none on it any more."""
    worker = _worker_id()
    batch = _open_batch()
    task = _task_of(batch, task_id)
    if labelling_tasks.release_task(batch, task.task_id, worker, clock()):
        metrics.add_metric(name="LabellingReleases", unit=MetricUnit.Count, value=1)
    return Response(status_code=204)


@app.get("/tasks/<task_id>")
def get_task(task_id: str) -> dict:
    """The task, for the labeller holding its live lease."""
    worker = _worker_id()
    task = _task_of(_open_batch(), task_id)
    if task.answered:
        raise ApiError(403, f"task {task_id} was answered")
    if task.lease is None or not task.lease.held_by(worker, clock()):
        raise ApiError(403, f"you hold no live lease on task {task_id}: claim a task")
    return _json(_task_view(task))


def _parsed_answer() -> BrowserAnswer:
    try:
        body = json.loads(app.current_event.decoded_body or "")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None
    try:
        return BrowserAnswer.model_validate(body)
    except ValidationError as exc:
        reasons = [f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}" for error in exc.errors()]
        raise ApiError(422, "the answer is malformed", reasons) from None


def _already_answered(batch: OpenBatch, task: StoredTask, worker: str) -> ApiError:
    """The 409 for a second submit; the labeller's own first answer is (re)written if its write was lost."""
    if task.answered_by == worker and task.answer_document is not None:
        bucket = lambda_environment().require("data_bucket")
        write_document_once(
            bucket, browser_answer_key(batch.run_id, batch.iteration, task.task_id), task.answer_document
        )
    return ApiError(409, f"task {task.task_id} was already answered; this answer is neither stored nor charged")


@app.post("/tasks/<task_id>/answer")
def answer(task_id: str) -> dict:
    """Check the answer against its task; store it once and write its answer document. Nothing is stored on 4xx."""
    worker = _worker_id()
    batch = _open_batch()
    task = _task_of(batch, task_id)
    if task.answered:
        raise _already_answered(batch, task, worker)
    if task.lease is None or not may_answer(task.answered, task.lease, worker):
        raise ApiError(409, f"you do not hold the lease on task {task_id}: claim a task")
    submitted = _parsed_answer()
    now = clock()
    problems = answer_problems(
        submitted, task.task.width, task.task.height, len(batch.classes), batch.qc, task.lease.granted_at, now
    )
    if problems:
        raise ApiError(422, "the answer cannot be accepted", problems)
    loop_input = human_loop_input(task.task, batch.classes, batch.run_id, batch.iteration, batch.tasks_key)
    document = answer_document(task_id, loop_input, worker, submitted, task.lease.granted_at, now).model_dump_json()
    stored = labelling_tasks.mark_answered(
        batch, task, worker, document, submitted.active_seconds, submitted.open_to_submit_seconds, now
    )
    if not stored:
        latest = _task_of(batch, task_id)
        if latest.answered:
            raise _already_answered(batch, latest, worker)
        raise ApiError(409, f"task {task_id} was claimed by someone else after your lease lapsed")
    bucket = lambda_environment().require("data_bucket")
    write_document_once(bucket, browser_answer_key(batch.run_id, batch.iteration, task.task_id), document)
    logger.info("accepted an answer", extra={"task_id": task_id, "outcome": submitted.outcome.value})
    metrics.add_metric(name="LabellingAnswersAccepted", unit=MetricUnit.Count, value=1)
    return _json(Accepted())


@lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    """Route one API Gateway HTTP API (payload 2.0) request."""
    return app.resolve(event, context)
