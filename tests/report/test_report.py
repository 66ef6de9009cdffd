import base64
import hashlib
import io
import json
import re
from datetime import UTC, datetime

import pytest
from PIL import Image

from boxloop.config import LabelingConfig
from boxloop.models import Box, IterationMetrics, LabelRecord, LabelSource, ThresholdSummary
from boxloop.report import UnlabellableImage, build_report, gallery_candidates
from boxloop.report_html import gallery_thumbnail, render_report_html
from boxloop.threshold import ThresholdCurvePoint

RUN_ID = "run-1"
EVIL_CLASS = "<script>alert(1)</script>"
REQUIRED_KEYS = {
    "run_id",
    "images_total",
    "images_auto_labelled",
    "images_human_labelled",
    "images_unlabelled",
    "human_seconds",
    "human_budget_seconds",
    "iterations",
    "target_miou",
    "delta",
    "auto_miou_lower_bound",
    "auto_miou_true",
    "human_miou_true",
    "per_iteration",
    "statement",
    "generated_at",
}


def config() -> LabelingConfig:
    return LabelingConfig(classes=["bottle", EVIL_CLASS], human_budget_hours=1.0)


def box(left: float, top: float, width: float, height: float, class_id: int = 0) -> Box:
    return Box(class_id=class_id, left=left, top=top, width=width, height=height)


def stated(threshold: float, lower_bound: float) -> ThresholdSummary:
    return ThresholdSummary(
        threshold=threshold,
        lower_bound=lower_bound,
        target=0.6,
        delta=0.05,
        n_validation=40,
        n_validation_above=30,
        statement=f"with 95% confidence … (lower bound {lower_bound:.2f})",
    )


def metrics(
    iteration: int,
    threshold: ThresholdSummary | None,
    auto: int,
    human: int,
    seconds: float,
    seconds_total: float,
    remaining: int,
) -> IterationMetrics:
    return IterationMetrics(
        run_id=RUN_ID,
        iteration=iteration,
        manifest_version=iteration,
        threshold=threshold,
        images_in_pool=10,
        auto_labelled=auto,
        human_labelled=human,
        audit_labelled=0,
        rejected_by_qc=0,
        unanswered=0,
        unlabelled_remaining=remaining,
        human_seconds=seconds,
        human_seconds_total=seconds_total,
        human_budget_seconds=3600.0,
        finished_at=datetime(2025, 1, 1, tzinfo=UTC),
    )


ITERATIONS = [
    metrics(0, None, auto=0, human=4, seconds=40.0, seconds_total=40.0, remaining=6),
    metrics(1, stated(0.8, 0.70), auto=2, human=1, seconds=20.0, seconds_total=60.0, remaining=3),
    metrics(2, stated(0.7, 0.64), auto=1, human=0, seconds=0.0, seconds_total=60.0, remaining=2),
]


def record(
    name: str, source: LabelSource, iteration: int, boxes: list[Box], width: int = 100, height: int = 80
) -> LabelRecord:
    return LabelRecord(
        image_id=name,
        source_ref=f"s3://bucket/{name}.png",
        width=width,
        height=height,
        boxes=boxes,
        box_confidences=[1.0] * len(boxes),
        class_map=config().class_map,
        label_source=source,
        creation_date="2025-01-01T00:00:00Z",
        job_name="job",
        iteration=iteration,
        image_confidence=0.9 if source is LabelSource.AUTO else None,
    )


def records() -> list[LabelRecord]:
    return [
        *(record(f"h{i}", LabelSource.HUMAN, 0, [box(0, 0, 10, 10)]) for i in range(4)),
        record("audit", LabelSource.AUDIT, 1, [box(0, 0, 10, 10, class_id=1)]),
        record("a1", LabelSource.AUTO, 1, [box(0, 0, 10, 10)]),
        record("a2", LabelSource.AUTO, 1, [box(0, 0, 10, 10)]),
        record("a3", LabelSource.AUTO, 2, []),
    ]


TRUTH = {
    **{f"h{i}": [box(0, 0, 10, 10)] for i in range(4)},
    "audit": [box(0, 0, 10, 10, class_id=0)],  # wrong class: IoU 0
    "a1": [box(0, 0, 10, 10)],  # perfect: 1.0
    "a2": [box(0, 0, 10, 5)],  # half: 0.5
    "a3": [],  # nothing on both sides: 1.0
}


def png(width: int = 100, height: int = 80) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (128, 128, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_figures_on_a_hand_computed_run_without_truth():
    report = build_report(RUN_ID, config(), ITERATIONS, iter(records())).to_json()
    assert set(report) >= REQUIRED_KEYS
    assert report["images_auto_labelled"] == 3
    assert report["images_human_labelled"] == 5  # the audit label counts as human
    assert report["images_unlabelled"] == 2
    assert report["images_total"] == 10
    assert report["human_seconds"] == 60.0
    assert report["human_budget_seconds"] == 3600.0
    assert report["iterations"] == 3
    assert (report["target_miou"], report["delta"]) == (0.6, 0.05)
    assert report["auto_miou_lower_bound"] == pytest.approx((2 * 0.70 + 1 * 0.64) / 3)
    assert report["auto_miou_confidence"] == pytest.approx(0.90)
    assert report["auto_miou_true"] is None and report["human_miou_true"] is None
    assert "90% confidence" in report["statement"] and "≥ 0.68" in report["statement"]
    assert "3 auto-labelled images" in report["statement"]
    assert "2 iterations that auto-labelled images (δ = 0.05 each)" in report["statement"]
    assert [row["auto_in_manifest"] for row in report["per_iteration"]] == [0, 2, 1]
    assert [row["lower_bound"] for row in report["per_iteration"]] == [None, 0.70, 0.64]
    assert [row["human_seconds"] for row in report["per_iteration"]] == [40.0, 20.0, 0.0]
    assert report["per_iteration"][1]["n_validation_above"] == 30
    assert datetime.fromisoformat(report["generated_at"]).tzinfo is not None


def test_realised_quality_with_truth():
    report = build_report(RUN_ID, config(), ITERATIONS, records(), truth=TRUTH, images_total=12).to_json()
    assert report["auto_miou_true"] == pytest.approx((1.0 + 0.5 + 1.0) / 3)
    assert report["human_miou_true"] == pytest.approx(4 / 5)
    assert [row["auto_miou_true"] for row in report["per_iteration"]] == [None, pytest.approx(0.75), 1.0]
    assert report["images_unlabelled"] == 4


def test_no_auto_labels_states_so():
    human_only = [r for r in records() if r.label_source is not LabelSource.AUTO]
    report = build_report(RUN_ID, config(), ITERATIONS[:1], human_only).to_json()
    assert report["auto_miou_lower_bound"] is None and report["auto_miou_confidence"] is None
    assert report["statement"].startswith("No image was auto-labelled")
    assert "because no detector was trained before the images were labelled" in report["statement"]


def test_no_auto_labels_says_why_the_bound_refused():
    human_only = [r for r in records() if r.label_source is not LabelSource.AUTO]
    refused = ThresholdSummary(
        threshold=None, lower_bound=None, target=0.6, delta=0.05, n_validation=40, n_validation_above=0, statement="s"
    )
    trained = metrics(1, refused, auto=0, human=3, seconds=20.0, seconds_total=60.0, remaining=3)
    trained = trained.model_copy(update={"validation_miou": 0.2})
    statement = build_report(RUN_ID, config(), [ITERATIONS[0], trained], human_only).to_json()["statement"]
    assert (
        "because the last detector (validation mean IoU 0.20) had no confidence threshold whose 95% lower bound on "
        "the auto-labels' mean IoU reached the target 0.60"
    ) in statement
    too_small = config().model_copy(update={"auto_label": False})
    assert "auto_label false" in build_report(RUN_ID, too_small, ITERATIONS[:1], human_only).to_json()["statement"]


def test_deltas_summing_to_one_give_no_combined_bound():
    loose = ThresholdSummary(
        threshold=0.5, lower_bound=0.7, target=0.6, delta=0.49, n_validation=40, n_validation_above=30, statement="s"
    )
    iterations = [metrics(i, loose, 1, 0, 0.0, 0.0, 0) for i in range(3)]
    auto = [record(f"a{i}", LabelSource.AUTO, i, []) for i in range(3)]
    report = build_report(RUN_ID, config(), iterations, auto)
    assert report.auto_miou_lower_bound is None
    assert "too low to combine" in report.statement


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"iterations": ITERATIONS[:1]}, "iteration 1, which has no metrics"),
        (
            {"iterations": [ITERATIONS[0], metrics(1, None, 2, 1, 0, 0, 0), ITERATIONS[2]]},
            "iteration 1: 2 auto-labelled records, but its metrics state no lower bound",
        ),
        ({"images_total": 5}, "images_total 5 is less than the 8 labelled records"),
        ({"truth": {"a1": []}}, "record h0: no reference boxes in truth"),
        ({"iterations": [ITERATIONS[0], ITERATIONS[0]]}, "iteration 0: metrics given twice"),
        ({"threshold_curves": {7: []}}, r"threshold_curves for iterations without metrics: \[7\]"),
    ],
)
def test_inconsistent_input_is_named(kwargs, message):
    arguments = {"iterations": ITERATIONS, **kwargs}
    with pytest.raises(ValueError, match=message):
        build_report(RUN_ID, config(), records=records(), **arguments)


def test_metrics_of_another_run_are_rejected():
    other = ITERATIONS[0].model_copy(update={"run_id": "other"})
    with pytest.raises(ValueError, match="metrics are for run 'other'"):
        build_report(RUN_ID, config(), [other], [])


def test_gallery_draws_boxes_and_rejects_bad_images():
    target = record("g", LabelSource.AUTO, 1, [box(20, 20, 40, 30, class_id=1)])
    item = gallery_thumbnail(target, png())
    assert item.class_names == [EVIL_CLASS] and item.box_count == 1
    thumbnail = Image.open(io.BytesIO(base64.b64decode(item.jpeg_base64))).convert("RGB")
    assert thumbnail.size == (100, 80)
    edge = thumbnail.getpixel((20, 40))
    inside = thumbnail.getpixel((40, 40))
    assert edge[0] > 200 and edge[2] < 80  # tab10 orange (255, 127, 14) on the box's left edge
    assert all(abs(channel - 128) < 12 for channel in inside)

    report = build_report(RUN_ID, config(), ITERATIONS, records())
    with pytest.raises(ValueError, match="gallery image g: is 50x80 but its record says 100x80"):
        render_report_html(report, gallery=[(target, png(width=50))])
    with pytest.raises(ValueError, match="gallery image g: cannot be decoded"):
        render_report_html(report, gallery=[(target, b"not an image")])


def curves() -> dict[int, list[ThresholdCurvePoint]]:
    return {
        1: [
            ThresholdCurvePoint(threshold=t / 10, n=40 - 3 * t, mean_quality=0.5 + t / 30, lower_bound=0.4 + t / 30)
            for t in range(10)
        ],
        2: [ThresholdCurvePoint(threshold=0.7, n=30, mean_quality=0.8, lower_bound=0.64)],
    }


def gallery() -> list[tuple[LabelRecord, bytes]]:
    return [
        (record("auto-img", LabelSource.AUTO, 1, [box(20, 20, 40, 30, class_id=1)]), png()),
        (record("human-img", LabelSource.HUMAN, 0, [box(5, 5, 10, 10)]), png()),
    ]


def test_html_is_self_contained_and_escaped():
    report = build_report(RUN_ID, config(), ITERATIONS, records(), threshold_curves=curves(), truth=TRUTH)
    page = render_report_html(report, gallery())
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)
    assert page.count('src="data:image/jpeg;base64,') == 2
    assert page.count('src="data:image/png;base64,') == 3  # progress, threshold curves, bound vs realised
    assert EVIL_CLASS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Auto-labelled" in page and "Routed to people" in page


def test_images_that_cannot_be_labelled_are_listed_with_their_reasons_as_text():
    blurred = UnlabellableImage(image_id="b", source_ref="s3://data/incoming/b.jpg", iteration=1, reasons=["too dark"])
    evil = UnlabellableImage(image_id="a", source_ref="s3://data/incoming/a.jpg", iteration=1, reasons=[EVIL_CLASS])
    report = build_report(RUN_ID, config(), ITERATIONS, records(), unlabellable=[blurred, evil])
    assert [image.image_id for image in report.unlabellable] == ["a", "b"]
    assert report.to_json()["unlabellable"][1] == {
        "image_id": "b",
        "source_ref": "s3://data/incoming/b.jpg",
        "iteration": 1,
        "reasons": ["too dark"],
    }
    page = render_report_html(report)
    assert "s3://data/incoming/b.jpg" in page and "too dark" in page
    assert EVIL_CLASS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "labellers could label every image" in render_report_html(build_report(RUN_ID, config(), [], []))


def test_html_without_iterations_or_gallery_still_renders():
    page = render_report_html(build_report(RUN_ID, config(), [], []))
    assert "No iterations yet." in page and "No gallery images were given." in page
    assert "data:image" not in page


def test_gallery_candidates_sample_each_source_boundedly_and_reproducibly():
    many = [record(f"a{i}", LabelSource.AUTO, 1, []) for i in range(50)] + records()
    picked = gallery_candidates(iter(many), per_source=3, seed=1)
    assert [r.label_source is LabelSource.AUTO for r in picked] == [True] * 3 + [False] * 3
    assert len({r.image_id for r in picked}) == 6
    assert picked == gallery_candidates(many, per_source=3, seed=1)
    assert any(int(r.image_id[1:]) >= 3 for r in picked[:3])  # sampled from the whole stream, not its head


@pytest.mark.parametrize(
    ("build", "with_gallery", "json_sha256", "html_sha256"),
    [
        (
            lambda: build_report(RUN_ID, config(), ITERATIONS, records(), threshold_curves=curves(), truth=TRUTH),
            True,
            "be8db017e92142a0a0a0505fbaf5975ddde3c82b57d2f3daf0df9109839d61a7",
            "e325357ae68bdaf4e0a6d5fa248c7f252652e6c8ee4b12da41c7af5d26e3f843",
        ),
        (
            lambda: build_report(RUN_ID, config(), [], []),
            False,
            "0e49e3455b895916adbfd748fec8460f6c4f611cf3501b01c97bc7ee326ed877",
            "ad597b7db202b7032716d60cca8e6c3ccb4861ddcbcb0c61dcfcd85cdc30be9e",
        ),
    ],
    ids=["full-run", "empty-run"],
)
def test_outputs_are_pinned_byte_for_byte(build, with_gallery, json_sha256, html_sha256):
    """The same input gives the same report.json and report.html bytes (matplotlib and Pillow are pinned)."""
    report = build().model_copy(update={"generated_at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)})
    report_json = json.dumps(report.to_json(), indent=1).encode()  # as Finalize and the local run write it
    report_html = render_report_html(report, gallery() if with_gallery else ()).encode()
    assert hashlib.sha256(report_json).hexdigest() == json_sha256
    assert hashlib.sha256(report_html).hexdigest() == html_sha256
