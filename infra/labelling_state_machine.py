"""The labelling loop: one Step Functions state machine (DESIGN.md "The loop"), its Lambdas and SageMaker jobs.

The parts are built by small builders: ``loop_functions`` (the loop Lambdas), ``sagemaker_role`` (the role jobs
run under), ``labelling_definition`` (the states, from ``loop_tasks`` and ``sagemaker_tasks``, retrying as
``task_retries`` says) and ``labelling_acknowledgements`` (cdk-nag reasons). Every Task retries transient
errors and catches everything else into RecordFailure, which writes ``runs/<run>/failures/…json``, releases
the active-run lock and leaves the run resumable from its last published manifest version.
"""

from __future__ import annotations

from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from boxloop.layout import RUNS_PREFIX
from infra.job_image import JobImage
from infra.labelling_acknowledgements import (
    acknowledge_loop_functions,
    acknowledge_sagemaker_role,
    acknowledge_state_machine,
)
from infra.labelling_definition import labelling_definition
from infra.loop_functions import loop_functions
from infra.sagemaker_role import sagemaker_job_role
from infra.settings import EnvironmentSettings
from infra.storage import Storage


class LabellingStateMachine(Construct):
    """The state machine, the loop Lambdas it calls and the SageMaker role its jobs run under.

    Every part is created in this construct's scope, so the logical ids are those of the single class it was.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        storage: Storage,
        human_review_queue: sqs.IQueue,
        notifications: sns.ITopic,
        environment: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        bucket = storage.data_bucket
        self.job_image = JobImage(self, "DetectorJobImage")
        self.functions = loop_functions(
            self, settings=settings, storage=storage, notifications=notifications, environment=environment
        )
        self.sagemaker_role = sagemaker_job_role(self, bucket=bucket, job_image=self.job_image)
        acknowledge_sagemaker_role(self.sagemaker_role, bucket)

        self.log_group = logs.LogGroup(
            self, "ExecutionLogs", retention=getattr(logs.RetentionDays, settings.log_retention)
        )
        definition = labelling_definition(
            self,
            settings=settings,
            functions=self.functions,
            sagemaker_role=self.sagemaker_role,
            job_image=self.job_image,
            bucket=bucket,
            human_review_queue=human_review_queue,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=f"boxloop-{settings.name}-labelling",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ERROR, include_execution_data=False),
        )
        bucket.grant_read(self.state_machine, f"{RUNS_PREFIX}*")
        acknowledge_state_machine(self.state_machine, self.functions, bucket)
        acknowledge_loop_functions(self.functions, storage)
