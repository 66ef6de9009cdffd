"""The human step on AWS: the human-review queue, its consumer, the answer handler and, for the ``a2i``
workforce only, the A2I flow definition.

A2I resources exist only where an environment sets ``workforce: a2i`` with its workteam's ARN
(``infra/settings.py`` validates it): A2I is closed to new AWS customers, and a flow definition
on a missing workteam rolls the whole stack back. CloudFormation has no A2I resources, so the
human task UI and the flow definition are created with ``AwsCustomResource`` SDK calls. Both are
immutable in SageMaker: their names carry a hash of what defines them, so a change creates new
ones and CloudFormation deletes the old ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Aws, Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from boxloop.layout import A2I_OUTPUT_PREFIX, IMAGES_PREFIX, REJECTED_ANSWERS_PREFIX, RUNS_PREFIX
from infra.labelling_tasks import LABELLING_TABLE_ENV
from infra.lambda_image import REPOSITORY_ROOT, container_function
from infra.nag import acknowledge, acknowledge_object_prefixes, arn_token
from infra.queues import queue_with_dlq
from infra.run_key_patterns import ANY_RUN, REVIEWED_ANSWERS, every_iteration
from infra.settings import EnvironmentSettings
from infra.storage import Storage

WORKER_TEMPLATE = REPOSITORY_ROOT / "lambdas" / "human_review" / "worker_template.liquid.html"
ANSWER_FILE = "output.json"
CONSUMER_TIMEOUT = Duration.minutes(5)


def _short_hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:8]


def read_worker_template(path: Path = WORKER_TEMPLATE) -> str:
    """The A2I worker task template (Liquid HTML); a clear error when it is missing."""
    if not path.is_file():
        raise FileNotFoundError(f"the A2I worker template {path} is missing: the human task UI is built from it")
    return path.read_text(encoding="utf-8")


class HumanReview(Construct):
    """Queue (+DLQ) → consumer Lambda → the workforce's tasks; answer objects → answer Lambda → task token.

    ``flow_definition_arn`` is None unless the environment's workforce is ``a2i``.
    """

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
        self.flow_definition_arn: str | None = None
        env = {**environment, "HUMAN_QUEUE_URL": self.queue.queue_url}
        if settings.workforce == "a2i" and settings.workteam_arn is not None:
            flow_name = self._a2i_flow(settings, bucket, settings.workteam_arn)
            env["FLOW_DEFINITION_ARN"] = self.flow_definition_arn = self.flow_definition.get_response_field(
                "FlowDefinitionArn"
            )
        self.consumer = container_function(
            self,
            "ConsumerFunction",
            handler="lambdas.human_review.consumer.handler",
            description="Hands each human batch to the workforce (or resumes the run at once when it is empty)",
            service_name="boxloop-human-review-consumer",
            environment=env,
            settings=settings,
            timeout=CONSUMER_TIMEOUT,
        )
        self.consumer.add_event_source(
            sources.SqsEventSource(self.queue, batch_size=1, report_batch_item_failures=True)
        )
        bucket.grant_read(self.consumer, f"{RUNS_PREFIX}*")
        bucket.grant_read(self.consumer, f"{IMAGES_PREFIX}*")
        storage.runs_table.grant_read_write_data(self.consumer)
        if self.flow_definition_arn is not None:
            flow_arn = f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:flow-definition/{flow_name}"
            self.consumer.add_to_role_policy(
                iam.PolicyStatement(actions=["sagemaker:StartHumanLoop"], resources=[flow_arn])
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
        if self.flow_definition_arn is not None:
            bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                s3n.LambdaDestination(self.answer),
                s3.NotificationKeyFilter(prefix=A2I_OUTPUT_PREFIX),
            )
            bucket.grant_read(self.answer, f"{A2I_OUTPUT_PREFIX}*")
        answer_reads = (ANY_RUN.config, every_iteration(ANY_RUN.tasks))
        answer_writes = (*REVIEWED_ANSWERS, f"{REJECTED_ANSWERS_PREFIX}*")
        for pattern in answer_reads:
            bucket.grant_read(self.answer, pattern)
        for pattern in answer_writes:
            bucket.grant_put(self.answer, pattern)
        acknowledge(
            self.answer,
            "AwsSolutions-IAM5",
            "The answer handler reads a run's configuration and tasks and writes one reviewed answer per image "
            "(runs/<run>/iterations/<NNNN>/human/<kind>/<image>.json); run ids and iterations are chosen at run time.",
            [f"Resource::{arn_token(bucket)}/{pattern}" for pattern in (*answer_reads, *answer_writes)],
        )
        storage.runs_table.grant_read_write_data(self.answer)
        storage.idempotency_table.grant_read_write_data(self.answer)
        acknowledge_object_prefixes(
            self.consumer,
            bucket,
            [RUNS_PREFIX, IMAGES_PREFIX],
            "The consumer reads each batch's tasks file (runs/<run>/iterations/<NNNN>/human/tasks.jsonl) and the "
            "images it names (images/…); keys are chosen at run time.",
        )
        acknowledge_object_prefixes(
            self.answer,
            bucket,
            [A2I_OUTPUT_PREFIX] if self.flow_definition_arn is not None else [],
            "The answer handler reads A2I output objects (a2i-output/<flow>/<date>/<loop>/output.json) and records "
            "answers that match no open task under rejected-answers/; keys are chosen at run time.",
        )

    def allow_task_responses(self, state_machine: sfn.IStateMachine) -> None:
        """Let the Lambdas that resume executions of ``state_machine`` do so (SendTaskSuccess/Failure): the
        answer Lambda when a batch is complete, the consumer when a batch is empty."""
        state_machine.grant_task_response(self.answer)
        state_machine.grant_task_response(self.consumer)

    def _a2i_flow(self, settings: EnvironmentSettings, bucket: s3.IBucket, workteam_arn: str) -> str:
        """The A2I role, human task UI and flow definition on ``workteam_arn``; returns the flow definition's name."""
        template = read_worker_template()
        self.a2i_role = self._a2i_role(bucket)
        task_ui_name = f"boxloop-{settings.name}-boxes-{_short_hash(template)}"
        self.task_ui = self._human_task_ui(task_ui_name, template)
        task_ui_arn = self.task_ui.get_response_field("HumanTaskUiArn")
        workers = int(settings.labelling_defaults.get("qc", {}).get("workers_per_image", 1))
        flow_name = f"boxloop-{settings.name}-flow-{_short_hash(task_ui_name, workteam_arn, str(workers))}"
        self.flow_definition = self._flow_definition(flow_name, task_ui_arn, bucket, workteam_arn, workers)
        return flow_name

    def take_browser_answers(self, *, bucket: s3.IBucket, answers_prefix: str, task_table: dynamodb.ITable) -> None:
        """The browser workforce: the consumer records each batch in ``task_table`` (reading the batch waiting for
        people first); the answer Lambda takes the labelling API's ``<answers_prefix>…/output.json`` objects as it
        takes A2I's."""
        self.consumer.add_environment(LABELLING_TABLE_ENV, task_table.table_name)
        self.consumer.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:BatchWriteItem", "dynamodb:PutItem"],
                resources=[task_table.table_arn],
            )
        )
        bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(self.answer),
            s3.NotificationKeyFilter(prefix=answers_prefix, suffix=ANSWER_FILE),
        )
        bucket.grant_read(self.answer, f"{answers_prefix}*")
        acknowledge_object_prefixes(
            self.answer,
            bucket,
            [answers_prefix],
            "The answer handler reads the labelling API's answer objects "
            f"({answers_prefix}<run>/<iteration>/<task>/{ANSWER_FILE}); keys are chosen at run time.",
        )

    def _a2i_role(self, bucket: s3.IBucket) -> iam.Role:
        role = iam.Role(
            self,
            "A2iFlowRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="boxloop A2I flow definition",
        )
        bucket.grant_read(role, f"{IMAGES_PREFIX}*")
        bucket.grant_read(role, f"{RUNS_PREFIX}*")
        bucket.grant_put(role, f"{A2I_OUTPUT_PREFIX}*")
        acknowledge_object_prefixes(
            role,
            bucket,
            [IMAGES_PREFIX, RUNS_PREFIX, A2I_OUTPUT_PREFIX],
            "A2I reads task images (images/…) and task inputs (runs/…) and writes one output object per human "
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
                    iam.PolicyStatement(
                        actions=[f"sagemaker:Create{kind}", f"sagemaker:Delete{kind}"], resources=[arn]
                    ),
                    *extra_statements,
                ]
            ),
            install_latest_aws_sdk=False,
        )
