from boxloop.publish import CreatedFrom, VersionIndex
from boxloop.run_failure import failed_iteration, failure_record


def test_the_failed_iteration_is_the_context_s_number_else_the_one_being_started():
    assert failed_iteration({"number": 4}, {"next_iteration": 9}) == 4
    assert failed_iteration(None, {"next_iteration": 3}) == 3
    assert failed_iteration({"label": "0004"}, None) is None
    assert failed_iteration("not a context", {"next_iteration": "3"}) is None


def test_a_run_resumes_after_its_last_published_version():
    latest = VersionIndex(
        version=3,
        iteration=2,
        previous_version=2,
        attribute="bounding-box",
        n_shards=1,
        counts={},
        total=0,
        shards=[],
        created_from=CreatedFrom(previous_index_sha256=None, new_labels=0, new_labels_sha256=""),
    )
    common = {
        "run_id": "r",
        "execution_name": "r-i0000",
        "iteration": 3,
        "error": "E",
        "cause": "c",
        "recorded_at": "t",
    }
    record = failure_record(latest=latest, **common)
    assert (record.last_published_version, record.resume_from) == (3, 3)
    before_any = failure_record(latest=None, **common)
    assert (before_any.last_published_version, before_any.resume_from) == (None, None)
    assert list(record.model_dump()) == [
        "run_id",
        "execution_name",
        "iteration",
        "error",
        "cause",
        "last_published_version",
        "resume_from",
        "recorded_at",
    ]
