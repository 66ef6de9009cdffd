from boxloop.label_sources import human_label_source, kept_auto_labels
from boxloop.models import LabelSource, Prediction


def test_a_label_answering_an_audit_task_is_an_audit_label_and_any_other_is_human():
    audit_ids = {"a1", "a2"}

    assert human_label_source("a1", audit_ids) is LabelSource.AUDIT
    assert human_label_source("u1", audit_ids) is LabelSource.HUMAN
    assert human_label_source("a1", set()) is LabelSource.HUMAN


def test_images_sent_as_audit_tasks_lose_their_auto_label_and_the_others_keep_it_in_order():
    auto = [Prediction(image_id=image_id, confidence=0.9) for image_id in ("p3", "a1", "p1", "a2", "p2")]

    kept = list(kept_auto_labels(auto, {"a1", "a2", "not-auto"}))

    assert [prediction.image_id for prediction in kept] == ["p3", "p1", "p2"]
    assert list(kept_auto_labels(auto, set())) == auto
