"""The labelling state machine, resolved to plain ASL: names, retries, catches, SageMaker settings, IAM."""

from __future__ import annotations

import pytest

from infra import state_names
from infra.asl import UnresolvedReference, resolve_definition

LOOP_STATES = [
    "IsResumedRun",
    "ResumeAfterLastPublishedVersion",
    "RecallProgressOfLastPublishedVersion",
    "RegisterPool",
    "SelectWaveForPeople",
    "IsThereAWaveForPeople",
    "LabelWaveByPeople",
    "CheckHumanLabelQuality",
    "AddNewArrivalsToPool",
    "IsNextIterationForPeopleOnly",
    "SplitTrainValidation",
    "ChooseImagesToInfer",
    "HasPreviousModel",
    "TrainDetector",
    "TrainDetectorFromPreviousModel",
    "CreateModel",
    "RunPoolInference",
    "ComputeThreshold",
    "RouteImages",
    "SelectImagesForHumans",
    "AreThereImagesForHumans",
    "LabelUncertainImagesByHumans",
    "PublishManifestVersion",
    "IsLabellingDone",
    "Finalize",
    "RunSucceeded",
    "RecordFailure",
    "RunFailed",
]

IAM_WILDCARD_ALLOW_LIST = {
    "ecr:GetAuthorizationToken": "ECR's token call has no resource to scope to",
    "cloudwatch:PutMetricData": "no resource scoping; limited to SageMaker namespaces by condition",
    "xray:PutTraceSegments": "X-Ray has no resources",
    "xray:PutTelemetryRecords": "X-Ray has no resources",
    "xray:GetSamplingRules": "X-Ray has no resources",
    "xray:GetSamplingTargets": "X-Ray has no resources",
    "logs:CreateLogDelivery": "Step Functions log delivery APIs support no resource scoping",
    "logs:GetLogDelivery": "as above",
    "logs:UpdateLogDelivery": "as above",
    "logs:DeleteLogDelivery": "as above",
    "logs:ListLogDeliveries": "as above",
    "logs:PutResourcePolicy": "as above",
    "logs:DescribeResourcePolicies": "as above",
    "logs:DescribeLogGroups": "as above",
    "s3:PutBucketNotification": "CDK's bucket-notifications provider (it configures our bucket only)",
    "sagemaker:ListTags": "CDK's CreateModel task reads model tags; ListTags has no model-scoped form there",
    "cloudfront:CreateInvalidation": "CDK's BucketDeployment (labelling site) writes '*' for its one shared handler "
    "role and has no option to scope it; the handler invalidates only the distribution it is given",
    "cloudfront:GetInvalidation": "as above (the handler waits for its own invalidation)",
}


@pytest.fixture(scope="module")
def asl(dev) -> dict:
    return dev.asl()


def test_states_are_named_for_what_they_do(asl):
    assert asl["StartAt"] == "IsResumedRun"
    assert set(LOOP_STATES) == set(asl["States"])


def test_the_exported_state_names_are_the_definitions_states(asl):
    exported = {value for name, value in vars(state_names).items() if name.isupper() and isinstance(value, str)}
    route_images = asl["States"][state_names.ROUTE_IMAGES]["ItemProcessor"]["States"]
    choose = asl["States"][state_names.CHOOSE_IMAGES_TO_INFER]["ItemProcessor"]["States"]
    assert exported == set(asl["States"]) | set(route_images) | set(choose)
    for name in state_names.HUMAN_STATES:
        assert asl["States"][name]["Resource"].endswith(":states:::sqs:sendMessage.waitForTaskToken")
    for name in state_names.TRAINING_STATES:
        assert asl["States"][name]["Resource"].endswith(":states:::sagemaker:createTrainingJob.sync")


def test_every_task_retries_with_one_backoff(asl):
    retries = [retry for state in asl["States"].values() for retry in state.get("Retry", [])]
    retries += asl["States"][state_names.ROUTE_IMAGES]["ItemProcessor"]["States"][state_names.ROUTE_SHARD]["Retry"]
    choose = asl["States"][state_names.CHOOSE_IMAGES_TO_INFER]["ItemProcessor"]["States"]
    retries += choose[state_names.CHOOSE_SHARD_IMAGES_TO_INFER]["Retry"]
    assert {(r["IntervalSeconds"], r["MaxAttempts"], r["BackoffRate"]) for r in retries} == {(5, 4, 2)}


def test_every_task_retries_and_catches_into_record_failure(asl):
    for name, state in asl["States"].items():
        if state["Type"] not in ("Task", "Map"):
            continue
        catches = {error: c["Next"] for c in state.get("Catch", []) for error in c["ErrorEquals"]}
        if name == "RecordFailure":
            assert catches["States.ALL"] == "RunFailed"
        else:
            assert catches["States.ALL"] == "RecordFailure", name
        if state["Type"] == "Task":
            assert state["Retry"] and all("States.ALL" not in r["ErrorEquals"] for r in state["Retry"]), name
    route_shard = asl["States"]["RouteImages"]["ItemProcessor"]["States"]["RouteShard"]
    assert route_shard["Retry"]


def test_human_step_waits_on_a_task_token_and_carries_on_after_timeout(asl):
    for name, after in (
        ("LabelWaveByPeople", "CheckHumanLabelQuality"),
        ("LabelUncertainImagesByHumans", "PublishManifestVersion"),
    ):
        state = asl["States"][name]
        assert state["Resource"].endswith(":states:::sqs:sendMessage.waitForTaskToken")
        assert state["TimeoutSecondsPath"] == "$.iteration.human_timeout_seconds"
        body = state["Parameters"]["MessageBody"]
        assert set(body) == {"run_id.$", "iteration.$", "bucket.$", "tasks_key.$", "task_token.$"}
        assert body["task_token.$"] == "$$.Task.Token"
        timeout = next(c for c in state["Catch"] if c["ErrorEquals"] == ["States.Timeout"])
        assert timeout["Next"] == after and state["Next"] == after


def test_training_uses_the_gpu_instance_the_job_image_and_channels(dev, prod):
    for synthesized, instance in ((dev, "ml.g4dn.xlarge"), (prod, "ml.g5.2xlarge")):
        states = synthesized.asl()["States"]
        train = states["TrainDetector"]
        params = train["Parameters"]
        assert train["Resource"].endswith(":states:::sagemaker:createTrainingJob.sync")
        assert params["ResourceConfig"]["InstanceType"] == instance
        assert {"classes.$", "label_attribute.$", "epochs.$", "min_steps.$", "max_seconds.$", "model.$"} <= set(
            params["HyperParameters"]
        )
        assert [c["ChannelName"] for c in params["InputDataConfig"]] == ["train", "validation"]
        warm = states["TrainDetectorFromPreviousModel"]["Parameters"]["InputDataConfig"]
        assert [c["ChannelName"] for c in warm] == ["train", "validation", "warm_start"]
        assert params["TrainingJobName.$"].startswith("States.Format('{}-i{}-{}-train'")
        assert params["AlgorithmSpecification"]["MetricDefinitions"]
        assert "container-assets" in params["AlgorithmSpecification"]["TrainingImage"]  # infra/job_image.py


def test_pool_inference_is_a_line_split_jsonlines_transform(asl):
    state = asl["States"]["RunPoolInference"]
    params = state["Parameters"]
    assert state["Resource"].endswith(":states:::sagemaker:createTransformJob.sync")
    assert params["TransformInput"]["ContentType"] == "application/jsonlines"
    assert params["TransformInput"]["SplitType"] == "Line"
    assert params["BatchStrategy"] == "MultiRecord"
    assert params["TransformOutput"]["AssembleWith"] == "Line"
    assert params["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri.$"] == "$.iteration.uris.inference_input"
    assert params["TransformResources"]["InstanceCount"] == 1
    create_model = asl["States"]["CreateModel"]["Parameters"]
    assert create_model["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"


@pytest.mark.parametrize(
    ("name", "prefix", "after"),
    [("ChooseImagesToInfer", "pool", "HasPreviousModel"), ("RouteImages", "inference", "SelectImagesForHumans")],
)
def test_the_shard_maps_are_distributed_maps_moto_can_run(asl, name, prefix, after):
    state = asl["States"][name]
    assert state["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert state["ItemReader"]["Resource"].endswith(":states:::s3:listObjectsV2")
    assert state["ItemReader"]["Parameters"]["Prefix.$"] == f"$.iteration.keys.{prefix}"
    assert "ItemBatcher" not in state and "ResultWriter" not in state and "ToleratedFailurePercentage" not in state
    assert state["Next"] == after


def test_the_images_to_infer_are_chosen_after_the_split_that_names_the_validation_images(asl):
    assert asl["States"]["SplitTrainValidation"]["Next"] == "ChooseImagesToInfer"


def test_done_choice_covers_every_stopping_reason(asl):
    choices = asl["States"]["IsLabellingDone"]
    variables = {rule["Variable"] for rule in choices["Choices"]}
    assert variables == {"$.progress.pool_labelled", "$.progress.budget_spent", "$.progress.people_done"}
    assert {rule["Next"] for rule in choices["Choices"]} == {"Finalize"}
    assert choices["Default"] == "AddNewArrivalsToPool"


def test_people_label_waves_until_the_initial_sample_is_sent_and_again_once_learning_stopped(asl):
    after_arrivals = asl["States"]["IsNextIterationForPeopleOnly"]
    assert asl["States"]["AddNewArrivalsToPool"]["Next"] == "IsNextIterationForPeopleOnly"
    assert [(r["Variable"], r["Next"]) for r in after_arrivals["Choices"]] == [
        ("$.progress.people_only", "SelectWaveForPeople")
    ]
    assert after_arrivals["Default"] == "SplitTrainValidation"
    assert asl["States"]["RegisterPool"]["Next"] == "SelectWaveForPeople"
    resume = asl["States"]["ResumeAfterLastPublishedVersion"]  # a resumed run recalls its last progress
    assert (
        resume["Parameters"] == {"number.$": "States.MathAdd($.resume_from, -1)"}
        and resume["ResultPath"] == "$.iteration"
    )
    assert resume["Next"] == "RecallProgressOfLastPublishedVersion"
    assert asl["States"]["RecallProgressOfLastPublishedVersion"]["Next"] == "IsLabellingDone"
    wave = asl["States"]["IsThereAWaveForPeople"]
    assert [(r["Variable"], r["Next"]) for r in wave["Choices"]] == [("$.human_batch.task_count", "LabelWaveByPeople")]
    assert wave["Default"] == "PublishManifestVersion"


def test_resolver_names_a_missing_reference(dev):
    with pytest.raises(UnresolvedReference, match="no substitution"):
        resolve_definition(dev.template, substitutions={})


def _statements(template: dict):
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Policy":
            yield logical_id, resource["Properties"]["PolicyDocument"]["Statement"]
        if resource["Type"] == "AWS::IAM::Role":
            for policy in resource["Properties"].get("Policies", []):
                yield logical_id, policy["PolicyDocument"]["Statement"]


def test_no_wildcard_action_or_resource_outside_the_allow_list(dev, prod):
    for synthesized in (dev, prod):
        for logical_id, statements in _statements(synthesized.template):
            for statement in statements:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert not [a for a in actions if a == "*" or a.endswith(":*")], (logical_id, actions)
                resources = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
                if "*" in resources:
                    unexplained = [a for a in actions if a not in IAM_WILDCARD_ALLOW_LIST]
                    assert not unexplained, (logical_id, unexplained)
        roles = synthesized.of_type("AWS::IAM::Role").values()
        managed = {str(arn) for role in roles for arn in role["Properties"].get("ManagedPolicyArns", [])}
        assert not [arn for arn in managed if "FullAccess" in arn]
