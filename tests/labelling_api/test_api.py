"""The labelling API's handler on moto: batch, paging, claims and leases, answers (once, checked, charged once)."""

from __future__ import annotations

import json

from boxloop.models import ScoredBox
from lambdas.adapters import labelling_tasks
from lambdas.adapters.runs import set_run_status
from lambdas.human_review.outputs import handle_output
from tests.labelling_api.conftest import (
    BUCKET,
    CLASSES,
    LEASE_SECONDS,
    OTHER_RUN,
    RUN,
    answer_body,
    make_task,
)

HUMAN = f"runs/{RUN}/iterations/0001/human/"


def _runs_item(labelling, pk: str, sk: str) -> dict:
    return labelling.dynamodb.get_item(TableName="runs", Key={"pk": {"S": pk}, "sk": {"S": sk}})["Item"]


def _claim(labelling, worker: str) -> tuple[int, dict | None]:
    return labelling.call("POST", "/api/claims", worker)


def test_no_batch_waiting_says_so(labelling):
    status, batch = labelling.call("GET", "/api/batch")
    assert status == 200 and batch["batch_open"] is False and batch["run_id"] is None
    assert labelling.call("POST", "/api/claims")[0] == 404


def test_the_batch_shows_classes_instructions_progress_and_budget(labelling):
    labelling.send_batch(RUN, 1, [make_task(1), make_task(2), make_task(3, "gold")])
    assert _claim(labelling, "alice")[0] == 200
    status, batch = labelling.call("GET", "/api/batch")
    assert status == 200
    assert batch["run_id"] == RUN and batch["iteration"] == 1 and batch["batch_open"] is True
    assert batch["classes"] == [{"id": i, "name": name} for i, name in enumerate(CLASSES)]
    assert batch["instructions"].startswith("Draw one tight box")
    assert batch["counts"] == {"total": 3, "submitted": 0, "leased": 1, "open": 2}
    assert batch["budget"] == {"hours_total": 2.0, "hours_used": 0.0}


def test_a_request_without_a_labeller_is_refused(labelling):
    status, body = labelling.call("GET", "/api/batch", worker=None)
    assert status == 401 and "sign in" in body["error"]


def test_a_claim_returns_the_task_with_a_presigned_image_and_prefilled_boxes(labelling):
    prefill = [ScoredBox(class_id=2, left=1.5, top=2.0, width=10.0, height=12.0, score=0.4)]
    labelling.send_batch(RUN, 1, [make_task(1, prefill=prefill)])
    status, body = _claim(labelling, "alice")
    assert status == 200
    task = body["task"]
    assert set(task) == {"task_id", "image_url", "width", "height", "boxes", "lease_expires_at"}
    assert (task["width"], task["height"]) == (80, 60)
    assert task["boxes"] == [{"class_id": 2, "left": 1.5, "top": 2.0, "width": 10.0, "height": 12.0}]
    assert "incoming/img-1.jpg" in task["image_url"] and "X-Amz-Expires=300" in task["image_url"]
    assert task["lease_expires_at"].startswith("2026-01-01T12:10:00")
    status, fetched = labelling.call("GET", f"/api/tasks/{task['task_id']}")
    assert status == 200 and {**fetched, "image_url": None} == {**task, "image_url": None}


def test_gold_tasks_look_like_any_other(labelling):
    labelling.send_batch(RUN, 1, [make_task(1, "gold")])
    _, body = _claim(labelling, "alice")
    text = json.dumps(body).lower()
    assert "gold" not in text and "purpose" not in text and "uncertain" not in text


def test_a_labeller_holding_a_lease_gets_the_same_task_and_nobody_else_does(labelling):
    labelling.send_batch(RUN, 1, [make_task(1), make_task(2)])
    first = _claim(labelling, "alice")[1]["task"]["task_id"]
    assert _claim(labelling, "alice")[1]["task"]["task_id"] == first
    second = _claim(labelling, "bob")[1]["task"]["task_id"]
    assert second != first
    assert _claim(labelling, "carol")[0] == 204
    assert labelling.call("GET", f"/api/tasks/{first}", "bob")[0] == 403


def test_a_skipped_task_is_released_and_the_next_claim_prefers_another(labelling):
    labelling.send_batch(RUN, 1, [make_task(1), make_task(2)])
    skipped = _claim(labelling, "alice")[1]["task"]["task_id"]
    assert labelling.call("DELETE", f"/api/claims/{skipped}", "bob")[0] == 204  # not bob's: nothing happens
    assert _claim(labelling, "bob")[1]["task"]["task_id"] != skipped
    assert labelling.call("DELETE", f"/api/claims/{skipped}", "alice")[0] == 204
    assert labelling.call("GET", f"/api/tasks/{skipped}", "alice")[0] == 403
    status, refused = labelling.call("POST", f"/api/tasks/{skipped}/answer", "alice", answer_body())
    assert status == 409 and "lease" in refused["error"]
    assert _claim(labelling, "alice")[1]["task"]["task_id"] == skipped  # the only task left comes back
    _, batch = labelling.call("GET", "/api/batch")
    assert batch["counts"] == {"total": 2, "submitted": 0, "leased": 2, "open": 0}


def test_a_skip_puts_the_task_behind_the_open_ones(labelling):
    labelling.send_batch(RUN, 1, [make_task(1), make_task(2), make_task(3)])
    first = _claim(labelling, "alice")[1]["task"]["task_id"]
    assert labelling.call("DELETE", f"/api/claims/{first}", "alice")[0] == 204
    second = _claim(labelling, "alice")[1]["task"]["task_id"]
    assert labelling.call("DELETE", f"/api/claims/{second}", "alice")[0] == 204
    third = _claim(labelling, "alice")[1]["task"]["task_id"]
    assert len({first, second, third}) == 3
    assert labelling.call("DELETE", "/api/claims/no-such-task", "alice")[0] == 404


def test_an_expired_lease_makes_the_task_claimable_again(labelling):
    labelling.send_batch(RUN, 1, [make_task(1)])
    task_id = _claim(labelling, "alice")[1]["task"]["task_id"]
    labelling.clock.advance(LEASE_SECONDS - 1)
    assert _claim(labelling, "bob")[0] == 204
    labelling.clock.advance(2)
    assert labelling.call("GET", f"/api/tasks/{task_id}", "alice")[0] == 403
    status, body = _claim(labelling, "bob")
    assert status == 200 and body["task"]["task_id"] == task_id
    status, refused = labelling.call("POST", f"/api/tasks/{task_id}/answer", "alice", answer_body())
    assert status == 409 and "lease" in refused["error"]
    assert labelling.answer_keys() == []


def test_a_lapsed_lease_nobody_took_still_accepts_its_holders_answer(labelling):
    labelling.send_batch(RUN, 1, [make_task(1)])
    task_id = _claim(labelling, "alice")[1]["task"]["task_id"]
    labelling.clock.advance(LEASE_SECONDS + 60)
    assert labelling.call("POST", f"/api/tasks/{task_id}/answer", "alice", answer_body())[0] == 200


def test_two_labellers_racing_for_one_task_never_share_it(labelling, monkeypatch):
    labelling.send_batch(RUN, 1, [make_task(1), make_task(2)])
    write_lease = labelling_tasks._try_lease
    bob_claims = []

    def bob_claims_first(batch, task_id, lease, now):
        # alice has read the same candidates as bob; bob's claim completes before alice's conditional write
        if lease.worker_id == "alice" and not bob_claims:
            bob_claims.append(_claim(labelling, "bob"))
        return write_lease(batch, task_id, lease, now)

    monkeypatch.setattr(labelling_tasks, "_try_lease", bob_claims_first)
    alice_status, alice = _claim(labelling, "alice")
    ((bob_status, bob),) = bob_claims
    assert alice_status == bob_status == 200
    assert alice["task"]["task_id"] != bob["task"]["task_id"]


def test_a_conditional_write_lets_only_one_of_two_racing_claims_win(labelling):
    labelling.send_batch(RUN, 1, [make_task(1)])
    batch = labelling_tasks.current_batch()
    (item,) = next(labelling_tasks._claimable_pages(batch, "<=", labelling.clock.now))["Items"]
    leases = [labelling_tasks.grant_lease(worker, labelling.clock.now, 60) for worker in ("alice", "bob")]
    won = [labelling_tasks._try_lease(batch, item["task_id"]["S"], lease, labelling.clock.now) for lease in leases]
    assert won[0] is not None and won[0].lease.worker_id == "alice" and won[1] is None


def test_an_answer_is_written_once_in_a2i_format_and_charged_once(labelling):
    labelling.send_batch(RUN, 1, [make_task(1), make_task(2)])
    task_id = _claim(labelling, "alice")[1]["task"]["task_id"]
    labelling.clock.advance(60)
    assert labelling.call("POST", f"/api/tasks/{task_id}/answer", "alice", answer_body(active=12.5)) == (
        200,
        {"status": "accepted"},
    )
    status, second = labelling.call("POST", f"/api/tasks/{task_id}/answer", "alice", answer_body(active=30.0))
    assert status == 409 and "neither stored nor charged" in second["error"]
    (key,) = labelling.answer_keys()
    assert key == f"answers/{RUN}/0001/{task_id}/output.json"
    document = json.loads(labelling.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    (human,) = document["humanAnswers"]
    assert human["workerId"] == "alice" and human["timeSpentInSeconds"] == 12.5 and human["openToSubmitSeconds"] == 20.0
    assert human["answerContent"]["annotatedResult"]["boundingBoxes"] == [
        {"label": "can", "left": 5.0, "top": 6.0, "width": 30.0, "height": 40.0}
    ]
    assert document["humanLoopName"] == task_id and document["inputContent"]["run_id"] == RUN
    assert handle_output(BUCKET, key).counted is True
    assert handle_output(BUCKET, key).counted is False
    assert float(_runs_item(labelling, f"RUN#{RUN}", "STATE")["human_seconds_used"]["N"]) == 12.5
    label = json.loads(
        labelling.s3.get_object(Bucket=BUCKET, Key=f"{HUMAN}labels/{make_task(1).image_id}.json")["Body"].read()
    )
    assert label["boxes"] == [{"class_id": 1, "left": 5.0, "top": 6.0, "width": 30.0, "height": 40.0}]
    assert labelling.call("GET", "/api/batch")[1]["counts"] == {"total": 2, "submitted": 1, "leased": 0, "open": 1}


def test_bad_answers_are_refused_with_reasons_and_nothing_is_stored(labelling):
    labelling.send_batch(RUN, 1, [make_task(1)])
    task_id = _claim(labelling, "alice")[1]["task"]["task_id"]
    labelling.clock.advance(60)
    path = f"/api/tasks/{task_id}/answer"
    outside_and_unknown = answer_body(
        boxes=[
            {"class_id": 0, "left": 5, "top": 5, "width": 10, "height": 10},
            {"class_id": 0, "left": 70, "top": 10, "width": 30, "height": 10},
            {"class_id": 7, "left": 1, "top": 1, "width": 10, "height": 10},
        ]
    )
    status, body = labelling.call("POST", path, "alice", outside_and_unknown)
    assert status == 422
    assert any(reason.startswith("box 2") and "outside the 80x60 image" in reason for reason in body["reasons"])
    assert any("unknown class id 7" in reason for reason in body["reasons"])
    cases = {
        "needs at least one box": answer_body(boxes=[]),
        "carries no boxes": answer_body(
            outcome="no_objects", boxes=[{"class_id": 0, "left": 1, "top": 1, "width": 9, "height": 9}]
        ),
        "needs a reason": answer_body(outcome="cannot_label", reason="  "),
        "at most 500": answer_body(outcome="cannot_label", reason="x" * 501),
        "exceeds the 20.0 s": answer_body(active=45.0),
        "finite number": answer_body(boxes=[{"class_id": 0, "left": float("nan"), "top": 1, "width": 9, "height": 9}]),
        "Input should be": answer_body(outcome="everything"),
    }
    for expected, body in cases.items():
        status, refused = labelling.call("POST", path, "alice", body)
        assert status == 422 and any(expected in reason for reason in refused["reasons"]), (expected, refused)
    assert labelling.call("POST", path, "alice", b"{not json")[0] == 400
    assert labelling.answer_keys() == []
    assert labelling_tasks.get_task(labelling_tasks.current_batch(), task_id).answered is False


def test_time_cannot_be_charged_beyond_the_time_the_task_was_held(labelling):
    labelling.send_batch(RUN, 1, [make_task(1)])
    task_id = _claim(labelling, "alice")[1]["task"]["task_id"]
    labelling.clock.advance(5)
    status, body = labelling.call("POST", f"/api/tasks/{task_id}/answer", "alice", answer_body(active=15.0))
    assert status == 422 and any("since the task was claimed" in reason for reason in body["reasons"])


def test_cannot_label_takes_the_image_out_with_its_reason(labelling):
    labelling.send_batch(RUN, 1, [make_task(1)])
    task_id = _claim(labelling, "alice")[1]["task"]["task_id"]
    labelling.clock.advance(60)
    body = answer_body(outcome="cannot_label", reason="the photo is completely blurred")
    assert labelling.call("POST", f"/api/tasks/{task_id}/answer", "alice", body)[0] == 200
    (key,) = labelling.answer_keys()
    result = handle_output(BUCKET, key)
    assert result.outcome == "unlabellable" and result.counted
    stored = json.loads(labelling.s3.get_object(Bucket=BUCKET, Key=result.stored_at)["Body"].read())
    assert result.stored_at == f"{HUMAN}unlabellable/{make_task(1).image_id}.json"
    assert stored["reasons"] == ["worker alice: the photo is completely blurred"]
    batch = _runs_item(labelling, f"RUN#{RUN}", "BATCH#0001")
    assert batch["done"]["N"] == "1" and "rejected" not in batch


def test_an_answer_for_another_runs_task_is_refused(labelling):
    labelling.send_batch(RUN, 1, [make_task(1)])
    old_task = _claim(labelling, "alice")[1]["task"]["task_id"]
    labelling.put_run(OTHER_RUN)
    labelling.send_batch(OTHER_RUN, 0, [make_task(2)])
    labelling.clock.advance(60)
    status, body = labelling.call("POST", f"/api/tasks/{old_task}/answer", "alice", answer_body())
    assert status == 404 and "not in the batch" in body["error"]
    assert labelling.answer_keys() == []
    assert labelling.call("GET", "/api/batch")[1]["run_id"] == OTHER_RUN


def test_a_task_id_that_is_not_one_is_refused_and_writes_nothing(labelling):
    labelling.send_batch(RUN, 1, [make_task(1)])
    _claim(labelling, "alice")
    labelling.clock.advance(60)
    status, body = labelling.call("POST", "/api/tasks/..%2F..%2Fruns%2Fx/answer", "alice", answer_body())
    assert status == 404 and "is not a task id" in body["error"]
    assert labelling.answer_keys() == []


def test_a_redelivered_batch_message_records_nothing_twice(labelling):
    labelling.send_batch(RUN, 1, [make_task(1)])
    task_id = _claim(labelling, "alice")[1]["task"]["task_id"]
    labelling.send_batch(RUN, 1, [make_task(1)])
    task = labelling_tasks.get_task(labelling_tasks.current_batch(), task_id)
    assert task.lease is not None and task.lease.worker_id == "alice"


def test_the_task_list_is_paged(labelling):
    labelling.send_batch(RUN, 1, [make_task(number) for number in range(1, 8)])
    claimed = _claim(labelling, "alice")[1]["task"]["task_id"]
    seen, cursor, pages = {}, None, 0
    while True:
        status, page = labelling.call("GET", "/api/tasks", query=f"limit=3&cursor={cursor}" if cursor else "limit=3")
        assert status == 200 and len(page["items"]) <= 3
        pages += 1
        seen.update({item["task_id"]: item["status"] for item in page["items"]})
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and pages >= 3
    assert seen[claimed] == "leased" and sorted(seen.values()).count("open") == 6
    assert labelling.call("GET", "/api/tasks", query="limit=101")[0] == 400
    assert labelling.call("GET", "/api/tasks", query="cursor=bm9wZQ")[0] == 400


def test_a_batch_the_run_no_longer_waits_for_is_closed(labelling):
    labelling.send_batch(RUN, 1, [make_task(1)])
    set_run_status(RUN, "failed")
    assert labelling.call("GET", "/api/batch")[1]["batch_open"] is False
    assert _claim(labelling, "alice")[0] == 204
