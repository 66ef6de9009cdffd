"""RecordFailure's advice for SageMaker jobs refused for an instance quota."""

from __future__ import annotations

from boxloop.job_failures import job_failure_advice, quota_refusal

TRAINING_CAUSE = (
    "The account-level service limit 'ml.g4dn.xlarge for training job usage' is 0 Instances, with current "
    "utilization of 0 Instances and a request delta of 1 Instances. Please use AWS Service Quotas to request an "
    "increase for this quota. (Service: AmazonSageMaker; Status Code: 400; Error Code: ResourceLimitExceeded; "
    "Request ID: 0c6b2e1f-7a31-4a2d-9d9e-5f1f0e6a2b11; Proxy: null)"
)
TRANSFORM_CAUSE = (
    "An error occurred (ResourceLimitExceeded) when calling the CreateTransformJob operation: The account-level "
    "service limit 'ml.g4dn.xlarge for transform job usage' is 2 Instances, with current utilization of 2 Instances "
    "and a request delta of 4 Instances. Please use AWS Service Quotas to request an increase for this quota."
)


def test_training_quota_names_the_quota_the_commands_and_the_cpu_setting():
    advice = job_failure_advice("SageMaker.AmazonSageMakerException", TRAINING_CAUSE)
    assert advice is not None
    assert "'ml.g4dn.xlarge for training job usage' is 0 instances and the job needs 1" in advice
    assert "aws service-quotas list-service-quotas --service-code sagemaker" in advice
    assert "QuotaName=='ml.g4dn.xlarge for training job usage'" in advice
    assert "request-service-quota-increase --service-code sagemaker" in advice and "--desired-value 1" in advice
    assert '"training_accelerator": "cpu", "training_instance_type": "ml.m5.2xlarge"' in advice
    assert "slower" in advice


def test_transform_quota_counts_the_instances_in_use_and_offers_a_cpu_transform():
    refusal = quota_refusal("SageMaker.ResourceLimitExceededException", TRANSFORM_CAUSE)
    assert refusal is not None
    assert (refusal.job_kind, refusal.instance_type, refusal.limit, refusal.needed) == (
        "transform",
        "ml.g4dn.xlarge",
        2,
        6,
    )
    advice = job_failure_advice("SageMaker.ResourceLimitExceededException", TRANSFORM_CAUSE)
    assert (
        advice is not None and '"transform_instance_type": "ml.c5.xlarge"' in advice and "--desired-value 6" in advice
    )


def test_other_failures_get_no_quota_advice():
    assert job_failure_advice("States.TaskFailed", "Lambda failed: KeyError 'run_id'") is None
    assert (
        job_failure_advice("SageMaker.AmazonSageMakerException", "Error Code: ValidationException; bad image") is None
    )
    limit_on_jobs = "Error Code: ResourceLimitExceeded: The account-level service limit 'Number of training jobs' is 0"
    assert job_failure_advice("SageMaker.AmazonSageMakerException", limit_on_jobs) is None
