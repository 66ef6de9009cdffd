import pytest

from boxloop.qc import HumanQualityError, check_initial_sample


def test_the_initial_sample_passes_with_few_failures_and_reports_its_figures():
    quality = check_initial_sample(accepted=18, rejected=2, sent=25, max_share=0.1)
    assert quality.model_dump() == {"accepted": 18, "rejected": 2, "unanswered": 5, "failed_share": 0.1}


def test_too_many_failures_stop_the_run():
    with pytest.raises(HumanQualityError, match="3 of 20 initial human labels"):
        check_initial_sample(accepted=17, rejected=3, sent=20, max_share=0.1)


def test_nobody_answering_stops_the_run_clearly():
    with pytest.raises(HumanQualityError, match="none of the 10 initial-sample images was answered"):
        check_initial_sample(accepted=0, rejected=0, sent=10, max_share=0.1)
