"""The labelling page alone, in Debian's Chromium, against an in-test fake of the API contract.

Boxes are drawn and moved with real mouse drags and must arrive in original-image pixels within 2 px.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from boxloop.corpus import CLASS_NAMES
from tests.web.fake_api import IMAGE_HEIGHT, IMAGE_WIDTH, FakeTask

TOLERANCE_PX = 2
CLASSES = [{"id": index, "name": name} for index, name in enumerate(CLASS_NAMES)]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "labelling-page.png"


def to_screen(page, x: float, y: float) -> tuple[float, float]:
    """The screen point of original pixel (x, y)."""
    rect = page.locator("#image").bounding_box()
    return rect["x"] + x * rect["width"] / IMAGE_WIDTH, rect["y"] + y * rect["height"] / IMAGE_HEIGHT


def drag(page, start: tuple[float, float], end: tuple[float, float], button: str = "left") -> None:
    page.mouse.move(*start)
    page.mouse.down(button=button)
    page.mouse.move(*end, steps=12)
    page.mouse.up(button=button)


def draw_box(page, left: float, top: float, width: float, height: float) -> None:
    drag(page, to_screen(page, left, top), to_screen(page, left + width, top + height))


def select_box(page, box: dict) -> None:
    page.mouse.click(*to_screen(page, box["left"] + box["width"] / 2, box["top"] + box["height"] / 2))
    page.wait_for_selector('[data-testid=box][data-selected="true"]')


def current_boxes(page) -> list[dict]:
    return page.evaluate("window.boxloop.currentBoxes()")


def assert_box(actual: dict, expected: dict) -> None:
    assert actual["class_id"] == expected["class_id"], (actual, expected)
    for key in ("left", "top", "width", "height"):
        assert abs(actual[key] - expected[key]) <= TOLERANCE_PX, (key, actual, expected)


def wait_for_answers(page, api, count: int) -> list[dict]:
    page.wait_for_selector(f'#progress[data-submitted="{count}"]')
    assert len(api.answers) == count
    return api.answers


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def task(scenes, task_id: str, boxes: list[dict] | None = None, scene: int = 0) -> FakeTask:
    return FakeTask(task_id=task_id, image=scenes[scene][0], boxes=boxes or [])


PREFILLED = {"class_id": 0, "left": 420.0, "top": 300.0, "width": 200.0, "height": 150.0}


def test_a_drawn_box_arrives_in_original_pixels(open_page, scenes):
    page, api = open_page([task(scenes, "t1"), task(scenes, "t2")], CLASSES)
    page.keyboard.press("2")
    draw_box(page, 100, 120, 200, 140)
    expected = {"class_id": 1, "left": 100, "top": 120, "width": 200, "height": 140}
    [drawn] = current_boxes(page)
    assert_box(drawn, expected)

    page.keyboard.press("Enter")
    [answer] = wait_for_answers(page, api, 1)
    assert answer["task_id"] == "t1" and answer["outcome"] == "boxes" and answer["reason"] is None
    assert answer["worker"] == "tester"
    [sent] = answer["boxes"]
    assert_box(sent, expected)
    assert 0 <= answer["active_seconds"] <= seconds_between(answer["opened_at"], answer["submitted_at"]) + 0.1
    page.wait_for_function("() => window.boxloop.taskId() === 't2'")
    assert current_boxes(page) == []


def test_a_prefilled_box_moves_and_resizes_by_drag(open_page, scenes):
    page, _ = open_page([task(scenes, "t1", [PREFILLED])], CLASSES)
    assert_box(current_boxes(page)[0], PREFILLED)
    select_box(page, PREFILLED)
    centre = (PREFILLED["left"] + 100, PREFILLED["top"] + 75)
    drag(page, to_screen(page, *centre), to_screen(page, centre[0] + 60, centre[1] - 40))
    [moved] = current_boxes(page)
    assert_box(moved, {**PREFILLED, "left": 480, "top": 260})

    corner = (480 + PREFILLED["width"], 260 + PREFILLED["height"])
    drag(page, to_screen(page, *corner), to_screen(page, corner[0] + 40, corner[1] + 30))
    [resized] = current_boxes(page)
    assert_box(resized, {**PREFILLED, "left": 480, "top": 260, "width": 240, "height": 180})


def test_a_number_key_changes_the_class_of_the_selected_box(open_page, scenes):
    classes = [{"id": 100 + index, "name": f"class {index}"} for index in range(12)]
    boxes = [{**PREFILLED, "class_id": 100}]
    page, _ = open_page([task(scenes, "t1", boxes)], classes)
    select_box(page, PREFILLED)
    page.keyboard.press("3")
    assert current_boxes(page)[0]["class_id"] == 102
    page.keyboard.press("0")
    assert current_boxes(page)[0]["class_id"] == 109
    assert page.locator("[data-testid=box] .box-tag").inner_text() == "class 9"


def test_delete_then_undo_restores_the_box(open_page, scenes):
    page, _ = open_page([task(scenes, "t1", [PREFILLED])], CLASSES)
    select_box(page, PREFILLED)
    page.keyboard.press("Delete")
    assert current_boxes(page) == []
    page.keyboard.press("Control+z")
    [restored] = current_boxes(page)
    assert_box(restored, PREFILLED)
    page.keyboard.press("Control+z")  # the pre-filled boxes are where the history starts
    assert len(current_boxes(page)) == 1

    draw_box(page, 50, 50, 120, 90)
    assert len(current_boxes(page)) == 2
    page.keyboard.press("Backspace")  # nothing selected: a drawn box is let go
    assert len(current_boxes(page)) == 2
    page.keyboard.press("Control+z")
    assert_box(current_boxes(page)[0], PREFILLED)
    assert len(current_boxes(page)) == 1


def test_a_drag_off_the_selected_box_draws_a_new_one(open_page, scenes):
    page, _ = open_page([task(scenes, "t1", [PREFILLED])], CLASSES)
    select_box(page, PREFILLED)
    page.keyboard.press("4")
    draw_box(page, 60, 80, 150, 100)
    prefilled, drawn = current_boxes(page)
    assert_box(prefilled, {**PREFILLED, "class_id": 3})
    assert_box(drawn, {"class_id": CLASSES[0]["id"], "left": 60, "top": 80, "width": 150, "height": 100})


def test_no_objects_and_cannot_label(open_page, scenes):
    tasks = [task(scenes, "t1", [PREFILLED]), task(scenes, "t2", scene=1), task(scenes, "t3")]
    page, api = open_page(tasks, CLASSES)
    page.keyboard.press("e")
    dialog = page.locator("#dialog")
    assert "1 box" in dialog.inner_text()
    page.keyboard.press("Escape")
    assert not dialog.is_visible() and api.answers == []
    page.keyboard.press("e")
    page.keyboard.press("Enter")
    [first] = wait_for_answers(page, api, 1)
    assert (first["task_id"], first["outcome"], first["boxes"], first["reason"]) == ("t1", "no_objects", [], None)

    page.wait_for_function("() => window.boxloop.taskId() === 't2'")
    page.keyboard.press("x")
    page.keyboard.press("Enter")  # an empty reason is refused in the page
    assert page.locator("#dialog-error").is_visible()
    page.keyboard.type("glare hides the shelf")
    page.keyboard.press("Enter")
    second = wait_for_answers(page, api, 2)[1]
    assert (second["task_id"], second["outcome"], second["boxes"]) == ("t2", "cannot_label", [])
    assert second["reason"] == "glare hides the shelf"

    page.wait_for_function("() => window.boxloop.taskId() === 't3'")
    page.keyboard.press("Enter")  # no boxes: Enter asks whether the image has no objects
    assert page.locator("#dialog").is_visible()
    page.keyboard.press("Enter")
    assert wait_for_answers(page, api, 3)[2]["outcome"] == "no_objects"


def test_a_rejected_answer_shows_the_reasons_and_stays_editable(open_page, scenes):
    page, api = open_page([task(scenes, "t1", [PREFILLED])], CLASSES)
    reasons = ["box 1 lies outside the image", "unknown class 7"]
    api.rejections.append((422, {"error": "the answer is not valid", "reasons": reasons}))
    page.keyboard.press("Enter")
    page.wait_for_selector("#errors:not([hidden])")
    assert page.locator("[data-testid=error-reason]").all_inner_texts() == reasons
    assert api.answers == []

    select_box(page, PREFILLED)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    [answer] = wait_for_answers(page, api, 1)
    assert_box(answer["boxes"][0], {**PREFILLED, "class_id": 1})
    assert page.locator("#errors").is_hidden()


def test_a_lost_lease_is_reported_and_n_claims_the_next_task(open_page, scenes):
    page, api = open_page([task(scenes, "t1", [PREFILLED]), task(scenes, "t2")], CLASSES)
    api.leases.clear()  # the lease ran out and someone else answered the task
    api.submitted.add("t1")
    page.keyboard.press("Enter")
    page.wait_for_selector("#errors:not([hidden])")
    assert "not leased to tester" in page.locator("#errors").inner_text()
    page.keyboard.press("n")
    page.wait_for_function("() => window.boxloop.taskId() === 't2'")
    assert page.locator("#errors").is_hidden()

    page.keyboard.press("n")  # skipped and given back; with no other task open it comes back
    page.wait_for_selector("#message:not([hidden])")
    assert "came back" in page.locator("#message").inner_text()
    assert page.evaluate("window.boxloop.taskId()") == "t2" and api.answers == [] and api.released == ["t2"]


def test_n_gives_the_task_back_and_claims_another(open_page, scenes):
    page, api = open_page([task(scenes, "t1"), task(scenes, "t2"), task(scenes, "t3")], CLASSES)
    page.keyboard.press("n")
    page.wait_for_function("() => window.boxloop.taskId() === 't2'")
    page.keyboard.press("n")
    page.wait_for_function("() => window.boxloop.taskId() === 't3'")
    page.keyboard.press("n")
    page.wait_for_function("() => window.boxloop.taskId() === 't1'")
    assert api.released == ["t1", "t2", "t3"] and api.answers == []


def test_the_page_waits_for_a_batch_and_for_an_open_task(open_page, scenes):
    def closed_batch_and_clock(page, api):
        api.batch_open = False
        page.clock.install(time=datetime(2030, 5, 1, 9, 0, 0))

    tasks = [task(scenes, "t1")]
    page, api = open_page(tasks, CLASSES, before_load=closed_batch_and_clock, wait_for_image=False)
    placeholder = page.locator("#placeholder")
    page.wait_for_function("() => document.getElementById('placeholder').textContent.includes('next batch')")
    api.leases["someone else"] = "t1"
    api.batch_open = True
    page.clock.run_for(5_000)
    page.wait_for_function("() => document.getElementById('placeholder').textContent.includes('No open tasks')")
    assert page.evaluate("window.boxloop.taskId()") is None
    del api.leases["someone else"]
    page.clock.run_for(5_000)
    page.wait_for_function("() => window.boxloop.taskId() === 't1'")
    assert placeholder.is_hidden()


def test_active_time_counts_only_visible_time_with_recent_input(open_page, scenes):
    def freeze_clock(page, _api):
        page.clock.install(time=datetime(2030, 5, 1, 9, 0, 0))

    page, api = open_page([task(scenes, "t1", [PREFILLED])], CLASSES, before_load=freeze_clock)
    page.clock.pause_at(datetime(2030, 5, 1, 9, 1, 0))
    page.mouse.move(200, 200)
    page.clock.run_for(10_000)
    assert page.evaluate("window.boxloop.activeSeconds()") == pytest.approx(10, abs=0.5)
    page.clock.run_for(60_000)  # no input: only the first 30 s after the last input count
    assert page.evaluate("window.boxloop.activeSeconds()") == pytest.approx(30, abs=0.5)
    assert page.locator("#active-seconds").inner_text() == "0:30"

    page.evaluate(
        """() => {
            Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
            document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    page.mouse.move(220, 210)
    page.clock.run_for(20_000)  # a hidden tab counts nothing, input or not
    assert page.evaluate("window.boxloop.activeSeconds()") == pytest.approx(30, abs=0.5)
    page.evaluate(
        """() => {
            Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true});
            document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    page.mouse.move(240, 220)
    page.clock.run_for(5_000)
    page.keyboard.press("Enter")
    [answer] = wait_for_answers(page, api, 1)
    wall = seconds_between(answer["opened_at"], answer["submitted_at"])
    assert answer["active_seconds"] == pytest.approx(35, abs=0.5)
    assert wall >= 95 and answer["active_seconds"] <= wall


def test_zoom_and_pan_keep_boxes_in_original_pixels(open_page, scenes):
    page, _ = open_page([task(scenes, "t1")], CLASSES)
    fitted = page.locator("#image").bounding_box()
    page.mouse.move(*to_screen(page, 400, 300))
    page.mouse.wheel(0, -400)
    page.wait_for_function(f"() => document.getElementById('image').getBoundingClientRect().width > {fitted['width']}")
    zoomed = page.locator("#image").bounding_box()
    assert zoomed["width"] / fitted["width"] == pytest.approx(zoomed["height"] / fitted["height"], rel=1e-3)
    draw_box(page, 300, 250, 120, 80)
    assert_box(current_boxes(page)[0], {"class_id": 0, "left": 300, "top": 250, "width": 120, "height": 80})

    page.keyboard.down(" ")
    drag(page, (700, 450), (600, 400))
    page.keyboard.up(" ")
    panned = page.locator("#image").bounding_box()
    assert (panned["x"] - zoomed["x"], panned["y"] - zoomed["y"]) == pytest.approx((-100, -50), abs=1)
    drag(page, (600, 400), (650, 420), button="middle")
    middle = page.locator("#image").bounding_box()
    assert (middle["x"] - panned["x"], middle["y"] - panned["y"]) == pytest.approx((50, 20), abs=1)
    assert len(current_boxes(page)) == 1  # panning never draws

    page.keyboard.press("f")
    assert page.locator("#image").bounding_box() == pytest.approx(fitted)
    page.keyboard.press("+")
    assert page.locator("#image").bounding_box()["width"] > fitted["width"]
    draw_box(page, 350, 280, 60, 40)
    assert_box(current_boxes(page)[1], {"class_id": 0, "left": 350, "top": 280, "width": 60, "height": 40})


def test_fifty_classes_are_filterable(open_page, scenes):
    classes = [{"id": index, "name": f"product {index:02d}"} for index in range(48)]
    classes += [{"id": 48, "name": "bottle"}, {"id": 49, "name": "bottle cap"}]
    page, _ = open_page([task(scenes, "t1")], classes)
    assert page.locator("[data-testid=class]").count() == 50
    page.locator("#class-filter").fill("bott")
    assert page.locator("[data-testid=class]").all_inner_texts() == ["bottle", "bottle cap"]
    page.locator("#class-filter").press("Enter")
    assert page.locator("[data-testid=class]").count() == 50
    assert page.locator("[data-testid=class].current").get_attribute("data-class-id") == "48"
    draw_box(page, 200, 200, 100, 100)
    assert current_boxes(page)[0]["class_id"] == 48


def test_the_labeller_is_asked_for_a_name_once(open_page, scenes):
    page, api = open_page([task(scenes, "t1")], CLASSES, worker=None, wait_for_image=False)
    page.locator("#dialog-input").fill("Ada")
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.boxloop && window.boxloop.taskId() === 't1'")
    assert page.locator("#worker").inner_text() == "Ada"
    assert api.headers[-1]["X-Boxloop-Worker"] == "Ada"
    page.reload()
    page.wait_for_function("() => window.boxloop && window.boxloop.taskId() === 't1'")
    assert not page.locator("#dialog").is_visible()


def test_token_mode_sends_the_token_from_the_link(open_page, scenes):
    page, api = open_page([task(scenes, "t1")], CLASSES, auth={"kind": "token"}, fragment="#token=s3cret")
    assert all(h["Authorization"] == "Bearer s3cret" and h["X-Boxloop-Worker"] == "tester" for h in api.headers)
    assert "s3cret" not in page.url


def base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def fake_jwt(claims: dict) -> str:
    """A JWT-shaped token (the page reads its claims; only the API would check the signature)."""
    return ".".join(base64url(json.dumps(part).encode()) for part in ({"alg": "RS256"}, claims)) + ".signature"


def test_cognito_mode_signs_in_with_pkce(open_page, scenes):
    id_token = fake_jwt({"sub": "0f1e", "cognito:username": "ada", "aud": "client-1", "exp": time.time() + 3600})
    seen: dict[str, dict] = {}

    def cognito(route):
        url = urlsplit(route.request.url)
        if url.path == "/oauth2/authorize":
            seen["authorize"] = dict(parse_qsl(url.query))
            query = urlencode({"code": "the-code", "state": seen["authorize"]["state"]})
            return route.fulfill(status=302, headers={"Location": f"{seen['authorize']['redirect_uri']}?{query}"})
        seen["token"] = dict(parse_qsl(route.request.post_data))
        body = {"id_token": id_token, "access_token": "access", "refresh_token": "refresh", "expires_in": 3600}
        return route.fulfill(json=body, headers={"Access-Control-Allow-Origin": "*"})

    def sign_in_through_fake_cognito(page, api):
        api.auth["redirect_uri"] = f"{api.url}callback"
        page.route("https://auth.example.test/**", cognito)

    auth = {"kind": "cognito", "cognito_domain": "auth.example.test", "client_id": "client-1"}
    page, api = open_page(
        [task(scenes, "t1")], CLASSES, auth=auth, worker=None, before_load=sign_in_through_fake_cognito
    )
    authorize, token = seen["authorize"], seen["token"]
    assert authorize["response_type"] == "code" and authorize["client_id"] == "client-1"
    assert authorize["code_challenge_method"] == "S256" and authorize["redirect_uri"] == f"{api.url}callback"
    assert token["grant_type"] == "authorization_code" and token["code"] == "the-code"
    assert token["redirect_uri"] == authorize["redirect_uri"] and token["client_id"] == "client-1"
    assert base64url(hashlib.sha256(token["code_verifier"].encode()).digest()) == authorize["code_challenge"]
    assert api.headers and all(h["Authorization"] == f"Bearer {id_token}" for h in api.headers)
    assert page.locator("#worker").inner_text() == "ada"
    assert "code=" not in page.url


@pytest.mark.skipif(os.environ.get("BOXLOOP_SCREENSHOTS") != "1", reason="set BOXLOOP_SCREENSHOTS=1 to rewrite docs")
def test_screenshot_for_the_docs(open_page, scenes):
    image, boxes = scenes[0]
    others = [task(scenes, f"t{number}") for number in range(2, 41)]

    def seventeen_done(_page, api):
        api.submitted.update(f"t{number}" for number in range(2, 19))

    tasks = [FakeTask(task_id="t1", image=image, boxes=boxes), *others]
    page, _ = open_page(tasks, CLASSES, before_load=seventeen_done)
    assert page.locator("[data-testid=box]").count() == len(boxes)
    select_box(page, boxes[0])
    page.mouse.move(*to_screen(page, 700, 560))
    page.screenshot(path=str(SCREENSHOT))
