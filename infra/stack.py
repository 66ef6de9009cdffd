"""One boxloop stack per environment: storage, ingest, the labelling state machine, human review, monitoring."""

from __future__ import annotations

import json

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from boxloop.layout import BROWSER_ANSWERS_PREFIX
from infra.human_review import HumanReview
from infra.ingest import Ingest
from infra.labelling_app import LabellingApp
from infra.labelling_state_machine import LabellingStateMachine
from infra.monitoring import METRICS_NAMESPACE, Monitoring
from infra.nag import acknowledge
from infra.settings import EnvironmentSettings
from infra.storage import Storage


class BoxloopStack(Stack):
    """Everything boxloop deploys for one environment (``settings``)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        storage = Storage(self, "Storage", settings=settings)
        monitoring = Monitoring(self, "Monitoring", settings=settings)
        environment = {
            "DATA_BUCKET": storage.data_bucket.bucket_name,
            "IMAGES_TABLE": storage.images_table.table_name,
            "RUNS_TABLE": storage.runs_table.table_name,
            "IDEMPOTENCY_TABLE": storage.idempotency_table.table_name,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "LABELING_DEFAULTS": json.dumps(settings.labelling_defaults, sort_keys=True),
        }
        human_review = HumanReview(self, "HumanReview", settings=settings, storage=storage, environment=environment)
        labelling = LabellingStateMachine(
            self,
            "Labelling",
            settings=settings,
            storage=storage,
            human_review_queue=human_review.queue,
            notifications=monitoring.topic,
            environment=environment,
        )
        human_review.allow_task_responses(labelling.state_machine)
        if settings.workforce == "browser":
            labelling_app = LabellingApp(
                self, "LabellingApp", settings=settings, storage=storage, environment=environment
            )
            human_review.take_browser_answers(
                bucket=storage.data_bucket, answers_prefix=BROWSER_ANSWERS_PREFIX, task_table=labelling_app.task_table
            )
            CfnOutput(self, "LabellingSiteUrl", value=labelling_app.site.url)
            CfnOutput(self, "LabellersUserPoolId", value=labelling_app.labellers.user_pool.user_pool_id)
            CfnOutput(self, "LabellingApiUrl", value=labelling_app.api.api_base)
        ingest = Ingest(
            self,
            "Ingest",
            settings=settings,
            storage=storage,
            state_machine=labelling.state_machine,
            environment={**environment, "STATE_MACHINE_ARN": labelling.state_machine.state_machine_arn},
        )
        monitoring.watch(
            state_machine=labelling.state_machine,
            queues={"uploads": ingest.queue, "human review": human_review.queue},
            dead_letter_queues={"Uploads": ingest.dead_letter_queue, "HumanReview": human_review.dead_letter_queue},
        )
        self._acknowledge_cdk_providers()

        CfnOutput(self, "DataBucketName", value=storage.data_bucket.bucket_name)
        CfnOutput(self, "StateMachineArn", value=labelling.state_machine.state_machine_arn)
        CfnOutput(self, "HumanReviewQueueUrl", value=human_review.queue.queue_url)
        if human_review.flow_definition_arn is not None:
            CfnOutput(self, "FlowDefinitionArn", value=human_review.flow_definition_arn)

    def _acknowledge_cdk_providers(self) -> None:
        """Reasons for findings on the Lambdas CDK itself adds (bucket notifications, AwsCustomResource)."""
        for provider_id in (
            "BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
            "AWS679f53fac002430cb0da5b7982bd2287",
        ):
            provider = self.node.try_find_child(provider_id)
            if provider is None:
                continue
            acknowledge(
                provider,
                "AwsSolutions-IAM4",
                "CDK's own provider Lambda uses AWSLambdaBasicExecutionRole to write its logs only.",
                ["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
            )
            acknowledge(
                provider,
                "AwsSolutions-IAM5",
                "CDK grants its bucket-notifications provider s3:PutBucketNotification on '*'.",
                ["Resource::*"],
            )
            acknowledge(provider, "AwsSolutions-L1", "CDK pins the runtime of its own provider Lambda.")
