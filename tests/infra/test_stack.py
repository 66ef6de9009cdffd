"""The synthesized stacks: settings per environment, storage, queues, cdk-nag."""

from __future__ import annotations

import json

import pytest

from infra.settings import SettingsError, environment_settings
from tests.infra.conftest import cdk_context


def test_unknown_environment_is_a_clear_error():
    with pytest.raises(SettingsError, match="unknown environment 'staging'.*dev, prod"):
        environment_settings({**cdk_context(), "env": "staging"})


def test_command_line_overrides_workforce_workteam_and_email():
    settings = environment_settings(
        {
            **cdk_context(),
            "env": "prod",
            "alarm_email": "ops@example.org",
            "workforce": "a2i",
            "workteam_arn": "arn:aws:sagemaker:eu-west-1:210987654321:workteam/private-crowd/x",
        }
    )
    assert settings.alarm_email == "ops@example.org" and settings.workforce == "a2i"
    assert settings.workteam_arn.endswith("workteam/private-crowd/x")


def test_invalid_setting_names_the_field():
    context = cdk_context()
    context["boxloop:environments"]["dev"]["training_instance_type"] = "ml.m5.xlarge"
    with pytest.raises(SettingsError, match="training_instance_type"):
        environment_settings({**context, "env": "dev"})


def test_data_bucket_encrypted_private_tls_only(dev, prod):
    for synthesized, versioned in ((dev, False), (prod, True)):
        buckets = synthesized.of_type("AWS::S3::Bucket")
        (data,) = [
            b
            for b in buckets.values()
            if "LifecycleConfiguration" in b["Properties"] and b["Properties"].get("LoggingConfiguration")
        ]
        props = data["Properties"]
        assert (
            props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
                "SSEAlgorithm"
            ]
            == "AES256"
        )
        assert all(props["PublicAccessBlockConfiguration"].values())
        assert (props.get("VersioningConfiguration", {}).get("Status") == "Enabled") is versioned
        rules = {rule["Id"]: rule for rule in props["LifecycleConfiguration"]["Rules"]}
        assert rules["ExpireQuarantine"]["Prefix"] == "quarantine/"
        assert rules["ExpireIterationScratch"]["TagFilters"] == [{"Key": "boxloop-retention", "Value": "scratch"}]
        policies = synthesized.of_type("AWS::S3::BucketPolicy").values()
        denies = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert denies and all(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_tables_and_pending_index(dev, prod):
    tables = dev.of_type("AWS::DynamoDB::Table")
    keys = {tuple(k["AttributeName"] for k in t["Properties"]["KeySchema"]): t for t in tables.values()}
    assert set(keys) == {("image_id",), ("pk", "sk"), ("id",)}
    (index,) = keys[("image_id",)]["Properties"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "pending"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["pending_partition", "pending_since"]
    for synthesized, pitr in ((dev, False), (prod, True)):
        for table in synthesized.of_type("AWS::DynamoDB::Table").values():
            spec = table["Properties"]["PointInTimeRecoverySpecification"]
            assert spec["PointInTimeRecoveryEnabled"] is pitr
    assert all(t["DeletionPolicy"] == "Retain" for t in prod.of_type("AWS::DynamoDB::Table").values())


def test_queues_encrypted_ssl_only_with_dead_letters(dev):
    queues = dev.of_type("AWS::SQS::Queue")
    assert len(queues) == 4
    assert all(q["Properties"]["SqsManagedSseEnabled"] for q in queues.values())
    with_dlq = [q for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    assert len(with_dlq) == 2
    policies = dev.of_type("AWS::SQS::QueuePolicy").values()
    ssl_denied = {
        json.dumps(queue, sort_keys=True)
        for p in policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for queue in p["Properties"]["Queues"]
    }
    assert len(ssl_denied) == 4


def test_lambdas_are_container_images_with_the_architecture_environment(dev):
    functions = dev.of_type("AWS::Lambda::Function")
    ours = {k: f for k, f in functions.items() if f["Properties"].get("PackageType") == "Image"}
    commands = {f["Properties"]["ImageConfig"]["Command"][0] for f in ours.values()}
    assert {
        "lambdas.ingest.handler.handler",
        "lambdas.config.handler.handler",
        "lambdas.human_review.consumer.handler",
        "lambdas.human_review.answer.handler",
        "lambdas.loop.register_pool.handler",
        "lambdas.loop.route_shard.handler",
        "lambdas.loop.record_failure.handler",
    } <= commands
    for function in ours.values():
        env = function["Properties"]["Environment"]["Variables"]
        assert {"DATA_BUCKET", "IMAGES_TABLE", "RUNS_TABLE", "IDEMPOTENCY_TABLE", "POWERTOOLS_SERVICE_NAME"} <= set(env)
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "boxloop"
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}


def test_alarms_and_dashboard(dev):
    alarms = dev.of_type("AWS::CloudWatch::Alarm")
    names = {a["Properties"].get("MetricName") for a in alarms.values()}
    assert {"ApproximateNumberOfMessagesVisible", "ExecutionsFailed", "HumanBudgetUsedPercent"} <= names
    assert all(a["Properties"]["AlarmActions"] for a in alarms.values())
    subscriptions = dev.of_type("AWS::SNS::Subscription")
    assert [s["Properties"]["Endpoint"] for s in subscriptions.values()] == ["boxloop-alarms@example.com"]
    assert len(dev.of_type("AWS::CloudWatch::Dashboard")) == 1


def test_cdk_nag_reports_no_unacknowledged_findings(dev, prod):
    for synthesized in (dev, prod):
        report = json.loads((synthesized.outdir / "validation-report.json").read_text())
        violations = [v["ruleName"] for p in report["pluginReports"] for v in p["violations"]]
        assert violations == []
