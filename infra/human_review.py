"""The human step on AWS: the human-review queue, its consumer, the answer handler and the A2I flow definition.

CloudFormation has no A2I resources, so the human task UI and the flow definition
are created with ``AwsCustomResource`` SDK calls. Both are immutable in SageMaker:
their names carry a hash of what defines them, so a change creates new ones and
CloudFormation deletes the old ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Aws, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.lambda_image import REPOSITORY_ROOT, container_function
from infra.nag import acknowledge_object_prefixes
from infra.queues import queue_with_dlq
from infra.settings import EnvironmentSettings
from infra.storage import Storage

WORKER_TEMPLATE = REPOSITORY_ROOT / "lambdas" / "human_review" / "worker_template.liquid.html"
A2I_OUTPUT_PREFIX = "a2i-output/"
CONSUMER_TIMEOUT = Duration.minutes(5)


def _short_hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:8]


def read_worker_template(path: Path = WORKER_TEMPLATE) -> str:
    """The A2I worker task template (Liquid HTML); a clear error when it is missing."""
    if not path.is_file():
        raise FileNotFoundError(f"the A2I worker template {path} is missing: the human task UI is built from it")
    return path.read_text(encoding="utf-8")


class HumanReview(Construct):
    """Queue (+DLQ) → consumer Lambda → A2I human loops; ``a2i-output/`` objects → answer Lambda → task token."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        storage: Storage,
        environment: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        bucket = storage.data_bucket
        self.queue, self.dead_letter_queue = queue_with_dlq(
            self, "HumanReviewQueue", visibility_timeout=Duration.seconds(CONSUMER_TIMEOUT.to_seconds() * 6)
        )
        template = read_worker_template()
        self.a2i_role = self._a2i_role(bucket)
        task_ui_name = f"boxloop-{settings.name}-boxes-{_short_hash(template)}"
        self.task_ui = self._human_task_ui(task_ui_name, template)
        task_ui_arn = self.task_ui.get_response_field("HumanTaskUiArn")
        workers = int(settings.labelling_defaults.get("qc", {}).get("workers_per_image", 1))
        flow_name = f"boxloop-{settings.name}-flow-{_short_hash(task_ui_name, settings.workteam_arn, str(workers))}"
        self.flow_definition = self._flow_definition(flow_name, task_ui_arn, bucket, settings.workteam_arn, workers)
        self.flow_definition_arn = self.flow_definition.get_response_field("FlowDefinitionArn")

        env = {**environment, "HUMAN_QUEUE_URL": self.queue.queue_url, "FLOW_DEFINITION_ARN": self.flow_definition_arn}
        self.consumer = container_function(
            self,
            "ConsumerFunction",
            handler="lambdas.human_review.consumer.handler",
            description="Starts one A2I human loop per task of a human batch",
            service_name="boxloop-human-review-consumer",
            environment=env,
            settings=settings,
            timeout=CONSUMER_TIMEOUT,
        )
        self.consumer.add_event_source(sources.SqsEventSource(self.queue, batch_size=1, report_batch_item_failures=True))
        bucket.grant_read(self.consumer, "runs/*")
        bucket.grant_read(self.consumer, "incoming/*")
        storage.runs_table.grant_read_write_data(self.consumer)
        self.consumer.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:StartHumanLoop"],
                resources=[f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:flow-definition/{flow_name}"],
            )
        )

        self.answer = container_function(
            self,
            "AnswerFunction",
            handler="lambdas.human_review.answer.handler",
            description="Applies QC to an A2I answer, stores the label, charges human time, resumes the run",
            service_name="boxloop-human-review-answer",
            environment=env,
            settings=settings,
        )
        bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED, s3n.LambdaDestination(self.answer), s3.NotificationKeyFilter(prefix=A2I_OUTPUT_PREFIX)
        )
        bucket.grant_read(self.answer, f"{A2I_OUTPUT_PREFIX}*")
        bucket.grant_read_write(self.answer, "runs/*")
        storage.runs_table.grant_read_write_data(self.answer)
        storage.idempotency_table.grant_read_write_data(self.answer)
        acknowledge_object_prefixes(
            self.consumer,
            bucket,
            ["runs/", "incoming/"],
            "The consumer reads each batch's tasks file (runs/<run>/iterations/<NNNN>/human/tasks.jsonl) and the "
            "images it names (incoming/…); keys are chosen at run time.",
        )
        acknowledge_object_prefixes(
            self.answer,
            bucket,
            ["runs/", A2I_OUTPUT_PREFIX],
            "The answer handler reads A2I output objects (a2i-output/<flow>/<date>/<loop>/output.json) and writes "
            "labels/rejections under runs/<run>/iterations/<NNNN>/human/; keys are chosen at run time.",
        )

    def allow_task_responses(self, state_machine: sfn.IStateMachine) -> None:
        """Let the answer Lambda resume (SendTaskSuccess/Failure) executions of ``state_machine``."""
        state_machine.grant_task_response(self.answer)

    def _a2i_role(self, bucket: s3.IBucket) -> iam.Role:
        role = iam.Role(
            self, "A2iFlowRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"), description="boxloop A2I flow definition"
        )
        bucket.grant_read(role, "incoming/*")
        bucket.grant_read(role, "runs/*")
        bucket.grant_put(role, f"{A2I_OUTPUT_PREFIX}*")
        acknowledge_object_prefixes(
            role,
            bucket,
            ["incoming/", "runs/", A2I_OUTPUT_PREFIX],
            "A2I reads task images (incoming/…) and task inputs (runs/…) and writes one output object per human "
            "loop under a2i-output/; keys are chosen at run time.",
        )
        return role

    def _human_task_ui(self, name: str, template: str) -> cr.AwsCustomResource:
        return self._sagemaker_resource("HumanTaskUi", "human-task-ui", name, {"UiTemplate": {"Content": template}})

    def _flow_definition(
        self, name: str, task_ui_arn: str, bucket: s3.IBucket, workteam_arn: str, workers: int
    ) -> cr.AwsCustomResource:
        resource = self._sagemaker_resource(
            "FlowDefinition",
            "flow-definition",
            name,
            {
                "RoleArn": self.a2i_role.role_arn,
                "OutputConfig": {"S3OutputPath": f"s3://{bucket.bucket_name}/{A2I_OUTPUT_PREFIX}"},
                "HumanLoopConfig": {
                    "WorkteamArn": workteam_arn,
                    "HumanTaskUiArn": task_ui_arn,
                    "TaskTitle": "Draw a box around every product",
                    "TaskDescription": "Adjust the suggested boxes (or draw new ones) so each product has one tight box.",
                    "TaskCount": workers,
                    "TaskTimeLimitInSeconds": 3600,
                    "TaskAvailabilityLifetimeInSeconds": 864000,
                },
            },
            extra_statements=[iam.PolicyStatement(actions=["iam:PassRole"], resources=[self.a2i_role.role_arn])],
        )
        resource.node.add_dependency(self.task_ui)
        return resource

    def _sagemaker_resource(
        self,
        kind: str,
        arn_kind: str,
        name: str,
        parameters: dict,
        extra_statements: Sequence[iam.PolicyStatement] = (),
    ) -> cr.AwsCustomResource:
        """The SageMaker ``kind`` (``HumanTaskUi``, ``FlowDefinition``) named ``name``, made from ``parameters``.

        SageMaker cannot update it, so an update creates it again (a new ``name``); the old one is
        deleted. The response carries ``<kind>Arn``.
        """
        arn = f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:{arn_kind}/{name}"
        create = cr.AwsSdkCall(
            service="SageMaker",
            action=f"create{kind}",
            parameters={f"{kind}Name": name, **parameters},
            physical_resource_id=cr.PhysicalResourceId.of(name),
            output_paths=[f"{kind}Arn"],
        )
        return cr.AwsCustomResource(
            self,
            kind,
            on_create=create,
            on_update=create,
            on_delete=cr.AwsSdkCall(service="SageMaker", action=f"delete{kind}", parameters={f"{kind}Name": name}),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(actions=[f"sagemaker:Create{kind}", f"sagemaker:Delete{kind}"], resources=[arn]),
                    *extra_statements,
                ]
            ),
            install_latest_aws_sdk=False,
        )
