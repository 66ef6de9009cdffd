"""The labelling loop: one Step Functions state machine (DESIGN.md "The loop"), its Lambdas and SageMaker jobs.

State names say what each step does; docs/stack.md walks through them. Every
Task retries transient errors and catches everything else into RecordFailure,
which writes ``runs/<run>/failures/…json``, releases the active-run lock and
leaves the run resumable from its last published manifest version.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Aws, Duration, Size, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.lambda_image import container_function
from infra.nag import acknowledge, acknowledge_object_prefixes, arn_token
from infra.settings import EnvironmentSettings
from infra.storage import Storage
from infra.training_code import write_source_bundle
from sagemaker_jobs.metric_definitions import METRIC_DEFINITIONS

LAMBDA_TRANSIENT_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.Unknown",
    "TransientStorageError",
]
SAGEMAKER_TRANSIENT_ERRORS = ["SageMaker.AmazonSageMakerException", "SageMaker.ThrottlingException"]
SQS_TRANSIENT_ERRORS = ["SQS.AmazonSQSException", "SQS.SdkClientException"]

FAILURE_PATH = "$.failure"


def job_name(kind: str) -> str:
    """SageMaker job / model name ``<run>-i<NNNN>-<token>-<kind>`` (≤ 63 characters for run ids ≤ 44).

    The token (from the iteration context) differs per execution, so a resumed run
    never collides with the jobs of the execution it resumes.
    """
    return sfn.JsonPath.format(
        "{}-i{}-{}-" + kind,
        sfn.JsonPath.string_at("$.run_id"),
        sfn.JsonPath.string_at("$.iteration.label"),
        sfn.JsonPath.string_at("$.iteration.job_token"),
    )


@dataclass(frozen=True)
class LoopHandler:
    """One loop Lambda: its handler (``module.function``), size and time limit."""

    handler: str
    description: str
    memory_mb: int = 1024
    timeout_minutes: int = 5
    ephemeral_storage_mb: int = 512


LOOP_HANDLERS: dict[str, LoopHandler] = {
    "RegisterPool": LoopHandler(
        "lambdas.loop.register_pool.handler",
        "Loads the run's configuration, moves pending images into new pool shards, starts each iteration",
        timeout_minutes=15,
    ),
    "SelectInitialSample": LoopHandler(
        "lambdas.loop.select_initial_sample.handler", "Draws the random initial sample for humans", 2048, 15
    ),
    "CheckHumanLabelQuality": LoopHandler(
        "lambdas.loop.check_human_label_quality.handler", "Fails the run when too many initial labels fail QC"
    ),
    "SplitTrainValidation": LoopHandler(
        "lambdas.loop.split_train_validation.handler", "Splits human labels into training and validation manifests", 2048, 15
    ),
    "ComputeThreshold": LoopHandler(
        "lambdas.loop.compute_threshold.handler", "Chooses the guaranteed auto-labelling threshold", 2048, 15
    ),
    "RouteShard": LoopHandler(
        "lambdas.loop.route_shard.handler", "Routes one inference shard: auto-labels and candidates for humans", 2048, 15
    ),
    "SelectImagesForHumans": LoopHandler(
        "lambdas.loop.select_images_for_humans.handler", "Picks the uncertain images humans label within budget", 2048, 15
    ),
    "PublishManifestVersion": LoopHandler(
        "lambdas.loop.publish_manifest_version.handler",
        "Publishes the next manifest version and iteration metrics",
        3008,
        15,
        ephemeral_storage_mb=10240,
    ),
    "Finalize": LoopHandler(
        "lambdas.loop.finalize.handler",
        "Writes exports and report, notifies, releases the active-run lock",
        3008,
        15,
        ephemeral_storage_mb=10240,
    ),
    "RecordFailure": LoopHandler(
        "lambdas.loop.record_failure.handler", "Records a failed run (resumable) and releases the active-run lock"
    ),
}


class LabellingStateMachine(Construct):
    """The state machine, the loop Lambdas it calls and the SageMaker role its jobs run under."""

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
        self._settings = settings
        bucket = storage.data_bucket
        self.training_code = s3_assets.Asset(
            self, "TrainingCode", path=str(write_source_bundle(Path(tempfile.mkdtemp(prefix="boxloop-sourcedir-"))))
        )
        self.functions = self._loop_functions(storage, notifications, environment)
        self.sagemaker_role = self._sagemaker_role(bucket)

        self.log_group = logs.LogGroup(
            self, "ExecutionLogs", retention=getattr(logs.RetentionDays, settings.log_retention)
        )
        definition = self._definition(bucket, human_review_queue)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=f"boxloop-{settings.name}-labelling",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ERROR, include_execution_data=False),
        )
        bucket.grant_read(self.state_machine, "runs/*")
        self._acknowledge_generated_wildcards(bucket, storage)

    # ----------------------------------------------------------------- Lambdas
    def _loop_functions(
        self, storage: Storage, notifications: sns.ITopic, environment: dict[str, str]
    ) -> dict[str, lambda_.IFunction]:
        functions: dict[str, lambda_.IFunction] = {}
        for name, spec in LOOP_HANDLERS.items():
            env = dict(environment)
            if name == "Finalize":
                env["NOTIFICATION_TOPIC_ARN"] = notifications.topic_arn
            if name == "RegisterPool":
                env["TRAINING_MODEL"] = self._settings.training_model
                env["TRAINING_MAX_SECONDS"] = str(self._settings.training_max_seconds)
            function = container_function(
                self,
                f"{name}Function",
                handler=spec.handler,
                description=spec.description,
                service_name="boxloop-loop",
                environment=env,
                settings=self._settings,
                timeout=Duration.minutes(spec.timeout_minutes),
                memory_size=spec.memory_mb,
                ephemeral_storage_mb=spec.ephemeral_storage_mb,
            )
            storage.data_bucket.grant_read_write(function, "runs/*")
            functions[name] = function
        storage.data_bucket.grant_read(functions["RegisterPool"], "config/*")
        functions["RouteShard"].add_to_role_policy(
            iam.PolicyStatement(actions=["s3:PutObjectTagging"], resources=[storage.data_bucket.arn_for_objects("runs/*")])
        )
        functions["SplitTrainValidation"].add_to_role_policy(
            iam.PolicyStatement(actions=["s3:PutObjectTagging"], resources=[storage.data_bucket.arn_for_objects("runs/*")])
        )
        storage.images_table.grant_read_write_data(functions["RegisterPool"])
        for name in ("RegisterPool", "SelectImagesForHumans", "PublishManifestVersion", "Finalize", "RecordFailure"):
            storage.runs_table.grant_read_write_data(functions[name])
        notifications.grant_publish(functions["Finalize"])
        return functions

    # ----------------------------------------------------------- SageMaker role
    def _sagemaker_role(self, bucket: s3.IBucket) -> iam.Role:
        """The role training and transform jobs run under: the run data, the code bundle, the DLC images, logs."""
        role = iam.Role(
            self,
            "SageMakerJobRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="boxloop training and batch-transform jobs",
        )
        bucket.grant_read(role, "runs/*")
        bucket.grant_read(role, "incoming/*")
        bucket.grant_put(role, "runs/*")
        self.training_code.grant_read(role)
        images = self._settings.images
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                resources=[
                    f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{images.registry_account}:repository/{images.training_repository}",
                    f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{images.registry_account}:repository/{images.inference_repository}",
                ],
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        acknowledge_object_prefixes(
            role,
            bucket,
            ["runs/", "incoming/"],
            "Jobs read their training manifests, pool shards and images and write model artefacts and inference "
            "output; keys are per run and iteration (runs/<run>/…) or chosen by uploaders (incoming/…).",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource scoping (PutMetricData is "
            "limited to SageMaker's namespaces by condition); SageMaker names its log streams per job under "
            "/aws/sagemaker/*; the code bundle is an object of CDK's asset bucket.",
            [
                "Resource::*",
                "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/*",
                "Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*",
            ],
        )
        return role

    def _image(self, repository: str, tag: str) -> tasks.DockerImage:
        account = self._settings.images.registry_account
        return tasks.DockerImage.from_registry(f"{account}.dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}/{repository}:{tag}")

    # --------------------------------------------------------------- definition
    def _definition(self, bucket: s3.IBucket, human_review_queue: sqs.IQueue) -> sfn.IChainable:
        run_failed = sfn.Fail(
            self, "RunFailed", comment="The failure is recorded under runs/<run>/failures/; resume from the last published version.",
            error_path="$.failure.Error", cause_path="$.failure.Cause",
        )
        record_failure = self._lambda_task(
            "RecordFailure",
            payload={"state.$": "$", "execution_name.$": "$$.Execution.Name"},
            result_path="$.recorded_failure",
        )
        record_failure.add_retry(
            errors=LAMBDA_TRANSIENT_ERRORS, interval=Duration.seconds(5), max_attempts=4, backoff_rate=2.0, jitter_strategy=sfn.JitterType.FULL
        )
        record_failure.add_catch(run_failed, errors=["States.ALL"], result_path="$.record_failure_error")
        record_failure.next(run_failed)

        def guarded(task: sfn.TaskStateBase, transient: list[str]) -> sfn.TaskStateBase:
            task.add_retry(errors=transient, interval=Duration.seconds(5), max_attempts=4, backoff_rate=2.0, jitter_strategy=sfn.JitterType.FULL)
            task.add_catch(record_failure, errors=["States.ALL"], result_path=FAILURE_PATH)
            return task

        run_fields = {"run_id.$": "$.run_id", "bucket.$": "$.bucket", "config_key.$": "$.config_key"}
        iteration_fields = {**run_fields, "iteration.$": "$.iteration.number"}

        register_pool = guarded(
            self._lambda_task(
                "RegisterPool",
                payload={**run_fields, "execution_name.$": "$$.Execution.Name", "iteration": 0},
                result_path="$.iteration",
            ),
            LAMBDA_TRANSIENT_ERRORS,
        )
        add_new_arrivals = guarded(
            self._lambda_task(
                "RegisterPool",
                state_name="AddNewArrivalsToPool",
                payload={**run_fields, "execution_name.$": "$$.Execution.Name", "iteration.$": "$.progress.next_iteration"},
                result_path="$.iteration",
            ),
            LAMBDA_TRANSIENT_ERRORS,
        )
        select_initial_sample = guarded(
            self._lambda_task("SelectInitialSample", payload=iteration_fields, result_path="$.human_batch"),
            LAMBDA_TRANSIENT_ERRORS,
        )
        check_quality = guarded(
            self._lambda_task("CheckHumanLabelQuality", payload=iteration_fields, result_path="$.quality_check"),
            LAMBDA_TRANSIENT_ERRORS,
        )
        split = guarded(
            self._lambda_task("SplitTrainValidation", payload=iteration_fields, result_path="$.split"),
            LAMBDA_TRANSIENT_ERRORS,
        )
        train_from_scratch = guarded(self._training_task(bucket, warm_start=False), SAGEMAKER_TRANSIENT_ERRORS)
        train_warm = guarded(self._training_task(bucket, warm_start=True), SAGEMAKER_TRANSIENT_ERRORS)
        create_model = guarded(self._create_model_task(), SAGEMAKER_TRANSIENT_ERRORS)
        run_inference = guarded(self._transform_task(), SAGEMAKER_TRANSIENT_ERRORS)
        compute_threshold = guarded(
            self._lambda_task(
                "ComputeThreshold",
                payload={**iteration_fields, "model_version.$": "$.training.job_name"},
                result_path="$.threshold",
            ),
            LAMBDA_TRANSIENT_ERRORS,
        )
        route_images = self._route_images(bucket)
        route_images.add_catch(record_failure, errors=["States.ALL"], result_path=FAILURE_PATH)
        select_for_humans = guarded(
            self._lambda_task("SelectImagesForHumans", payload=iteration_fields, result_path="$.human_batch"),
            LAMBDA_TRANSIENT_ERRORS,
        )
        publish = guarded(
            self._lambda_task(
                "PublishManifestVersion",
                payload={**iteration_fields, "execution_name.$": "$$.Execution.Name"},
                result_path="$.progress",
            ),
            LAMBDA_TRANSIENT_ERRORS,
        )
        finalize = guarded(
            self._lambda_task("Finalize", payload={**run_fields, "execution_name.$": "$$.Execution.Name"}, result_path="$.final"),
            LAMBDA_TRANSIENT_ERRORS,
        )
        label_initial = self._human_task("LabelInitialSampleByHumans", human_review_queue, check_quality, record_failure)
        label_uncertain = self._human_task("LabelUncertainImagesByHumans", human_review_queue, publish, record_failure)

        resume = sfn.Pass(
            self,
            "ResumeAfterLastPublishedVersion",
            comment="A resumed execution starts at iteration resume_from (the one after the last published version).",
            parameters={"next_iteration.$": "$.resume_from"},
            result_path="$.progress",
        )
        is_resumed = (
            sfn.Choice(self, "IsResumedRun")
            .when(
                sfn.Condition.and_(sfn.Condition.is_present("$.resume_from"), sfn.Condition.is_numeric("$.resume_from")),
                resume,
            )
            .otherwise(register_pool)
        )
        resume.next(add_new_arrivals)
        register_pool.next(select_initial_sample)
        select_initial_sample.next(label_initial)
        check_quality.next(publish)

        has_previous_model = (
            sfn.Choice(self, "HasPreviousModel")
            .when(sfn.Condition.is_string("$.iteration.uris.warm_start"), train_warm)
            .otherwise(train_from_scratch)
        )
        add_new_arrivals.next(split)
        split.next(has_previous_model)
        train_warm.next(create_model)
        train_from_scratch.next(create_model)
        create_model.next(run_inference)
        run_inference.next(compute_threshold)
        compute_threshold.next(route_images)
        route_images.next(select_for_humans)
        are_there_tasks = (
            sfn.Choice(self, "AreThereImagesForHumans")
            .when(sfn.Condition.number_greater_than("$.human_batch.task_count", 0), label_uncertain)
            .otherwise(publish)
        )
        select_for_humans.next(are_there_tasks)

        run_succeeded = sfn.Succeed(self, "RunSucceeded")
        finalize.next(run_succeeded)
        is_done = (
            sfn.Choice(self, "IsLabellingDone")
            .when(sfn.Condition.boolean_equals("$.progress.pool_labelled", True), finalize, comment="Every pool image is labelled")
            .when(sfn.Condition.boolean_equals("$.progress.budget_spent", True), finalize, comment="The human budget is spent")
            .when(sfn.Condition.boolean_equals("$.progress.iteration_cap_reached", True), finalize, comment="max_iterations reached")
            .when(sfn.Condition.boolean_equals("$.progress.no_progress", True), finalize, comment="No image was labelled this iteration")
            .otherwise(add_new_arrivals)
        )
        publish.next(is_done)
        return is_resumed

    def _lambda_task(
        self, function: str, *, payload: dict, result_path: str, state_name: str | None = None
    ) -> tasks.LambdaInvoke:
        return tasks.LambdaInvoke(
            self,
            state_name or function,
            lambda_function=self.functions[function],
            payload=sfn.TaskInput.from_object(payload),
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path=result_path,
        )

    def _human_task(
        self, state_name: str, queue: sqs.IQueue, next_state: sfn.IChainable, record_failure: sfn.IChainable
    ) -> tasks.SqsSendMessage:
        """``sqs:sendMessage.waitForTaskToken`` on the human-review queue; a timeout carries on with the answers so far."""
        task = tasks.SqsSendMessage(
            self,
            state_name,
            queue=queue,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            message_body=sfn.TaskInput.from_object(
                {
                    "run_id": sfn.JsonPath.string_at("$.run_id"),
                    "iteration": sfn.JsonPath.number_at("$.iteration.number"),
                    "bucket": sfn.JsonPath.string_at("$.bucket"),
                    "tasks_key": sfn.JsonPath.string_at("$.human_batch.tasks_key"),
                    "task_token": sfn.JsonPath.task_token,
                }
            ),
            task_timeout=sfn.Timeout.at("$.iteration.human_timeout_seconds"),
            result_path="$.human_answers",
        )
        task.add_retry(errors=SQS_TRANSIENT_ERRORS, interval=Duration.seconds(5), max_attempts=4, backoff_rate=2.0)
        task.add_catch(next_state, errors=["States.Timeout"], result_path="$.human_timeout")
        task.add_catch(record_failure, errors=["States.ALL"], result_path=FAILURE_PATH)
        task.next(next_state)
        return task

    def _channel(self, name: str, uri_path: str) -> tasks.Channel:
        return tasks.Channel(
            channel_name=name,
            content_type="application/jsonlines",
            data_source=tasks.DataSource(
                s3_data_source=tasks.S3DataSource(
                    s3_location=tasks.S3Location.from_json_expression(uri_path),
                    s3_data_type=tasks.S3DataType.S3_PREFIX,
                    s3_data_distribution_type=tasks.S3DataDistributionType.FULLY_REPLICATED,
                )
            ),
        )

    def _training_task(self, bucket: s3.IBucket, *, warm_start: bool) -> tasks.SageMakerCreateTrainingJob:
        settings = self._settings
        channels = [self._channel("train", "$.iteration.uris.train"), self._channel("validation", "$.iteration.uris.validation")]
        if warm_start:
            channels.append(self._channel("warm_start", "$.iteration.uris.warm_start"))
        return tasks.SageMakerCreateTrainingJob(
            self,
            "TrainDetectorFromPreviousModel" if warm_start else "TrainDetector",
            comment="Fine-tunes the previous iteration's model" if warm_start else "Trains the detector from its pretrained backbone",
            training_job_name=job_name("train"),
            role=self.sagemaker_role.without_policy_updates(),
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            algorithm_specification=tasks.AlgorithmSpecification(
                training_image=self._image(settings.images.training_repository, settings.images.training_tag),
                training_input_mode=tasks.InputMode.FILE,
                metric_definitions=[tasks.MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in METRIC_DEFINITIONS],
            ),
            input_data_config=channels,
            output_data_config=tasks.OutputDataConfig(s3_output_location=tasks.S3Location.from_json_expression("$.iteration.uris.model_output")),
            resource_config=tasks.ResourceConfig(
                instance_count=settings.training_instance_count,
                instance_type=ec2.InstanceType(settings.training_instance_type.removeprefix("ml.")),
                volume_size=Size.gibibytes(settings.training_volume_gb),
            ),
            stopping_condition=tasks.StoppingCondition(max_runtime=Duration.seconds(settings.training_max_runtime_seconds)),
            hyperparameters={
                "classes": sfn.JsonPath.string_at("$.iteration.hyperparameters.classes"),
                "label_attribute": sfn.JsonPath.string_at("$.iteration.hyperparameters.label_attribute"),
                "max_seconds": sfn.JsonPath.string_at("$.iteration.hyperparameters.max_seconds"),
                "model": sfn.JsonPath.string_at("$.iteration.hyperparameters.model"),
                "model_version": sfn.JsonPath.string_at("$.iteration.hyperparameters.model_version"),
                "sagemaker_program": "train.py",
                "sagemaker_submit_directory": self.training_code.s3_object_url,
                "sagemaker_region": Aws.REGION,
            },
            result_selector={
                "job_name.$": "$.TrainingJobName",
                "model_artifacts.$": "$.ModelArtifacts.S3ModelArtifacts",
            },
            result_path="$.training",
        )

    def _create_model_task(self) -> tasks.SageMakerCreateModel:
        settings = self._settings
        return tasks.SageMakerCreateModel(
            self,
            "CreateModel",
            model_name=job_name("model"),
            role=self.sagemaker_role.without_policy_updates(),
            primary_container=tasks.ContainerDefinition(
                image=self._image(settings.images.inference_repository, settings.images.inference_tag),
                mode=tasks.Mode.SINGLE_MODEL,
                model_s3_location=tasks.S3Location.from_json_expression("$.training.model_artifacts"),
                environment_variables=sfn.TaskInput.from_object(
                    {
                        "SAGEMAKER_PROGRAM": "inference.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY": self.training_code.s3_object_url,
                        "SAGEMAKER_REGION": Aws.REGION,
                    }
                ),
            ),
            result_path=sfn.JsonPath.DISCARD,
        )

    def _transform_task(self) -> tasks.SageMakerCreateTransformJob:
        settings = self._settings
        return tasks.SageMakerCreateTransformJob(
            self,
            "RunPoolInference",
            transform_job_name=job_name("infer"),
            model_name=job_name("model"),
            role=self.sagemaker_role.without_policy_updates(),
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            transform_input=tasks.TransformInput(
                transform_data_source=tasks.TransformDataSource(
                    s3_data_source=tasks.TransformS3DataSource(
                        s3_uri=sfn.JsonPath.string_at("$.iteration.uris.pool"), s3_data_type=tasks.S3DataType.S3_PREFIX
                    )
                ),
                content_type="application/jsonlines",
                split_type=tasks.SplitType.LINE,
            ),
            transform_output=tasks.TransformOutput(
                s3_output_path=sfn.JsonPath.string_at("$.iteration.uris.inference"),
                accept="application/jsonlines",
                assemble_with=tasks.AssembleWith.LINE,
            ),
            transform_resources=tasks.TransformResources(
                instance_count=settings.transform_instance_count,
                instance_type=ec2.InstanceType(settings.transform_instance_type.removeprefix("ml.")),
            ),
            batch_strategy=tasks.BatchStrategy.MULTI_RECORD,
            max_payload=Size.mebibytes(settings.transform_max_payload_mb),
            result_selector={"job_name.$": "$.TransformJobName"},
            result_path="$.inference",
        )

    def _route_images(self, bucket: s3.IBucket) -> sfn.DistributedMap:
        """A Distributed Map over the inference output shards; each shard is routed by one Lambda call."""
        route_images = sfn.DistributedMap(
            self,
            "RouteImages",
            comment="Confident images are auto-labelled; the rest become ranked candidates for humans.",
            item_reader=sfn.S3ObjectsItemReader(bucket=bucket, prefix=sfn.JsonPath.string_at("$.iteration.keys.inference")),
            item_selector={
                "run_id.$": "$.run_id",
                "bucket.$": "$.bucket",
                "iteration.$": "$.iteration.number",
                "shard_key.$": "$$.Map.Item.Value.Key",
            },
            max_concurrency=self._settings.route_max_concurrency,
            map_execution_type=sfn.StateMachineType.STANDARD,
            result_path=sfn.JsonPath.DISCARD,
        )
        route_shard = self._lambda_task("RouteShard", payload={"shard.$": "$"}, result_path="$.routed")
        route_shard.add_retry(
            errors=LAMBDA_TRANSIENT_ERRORS, interval=Duration.seconds(5), max_attempts=4, backoff_rate=2.0, jitter_strategy=sfn.JitterType.FULL
        )
        route_images.item_processor(route_shard)
        return route_images

    def _acknowledge_generated_wildcards(self, bucket: s3.IBucket, storage: Storage) -> None:
        """Reasons for the wildcards CDK's task constructs and grants write into the roles."""
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5",
            "Written by CDK's task constructs: lambda:InvokeFunction on '<function arn>:*' (any version of our own "
            "functions); SageMaker training-job / model / transform-job ARNs end in '/*' because job names are "
            "built per run and iteration at run time; the Distributed Map starts and reads its own child "
            "executions; X-Ray trace writes and log delivery support no resource scoping.",
            [f"Resource::{arn_token(function)}:*" for function in self.functions.values()]
            + [
                f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:{kind}/*"
                for kind in ("training-job", "model", "transform-job")
            ]
            + [
                "Resource::*",
                f"Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{self._state_machine_name_token()}:*",
                f"Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{self._state_machine_name_token()}/*:*",
            ],
        )
        acknowledge_object_prefixes(
            self.state_machine,
            bucket,
            ["runs/"],
            "The Distributed Map's ItemReader lists and reads each iteration's inference output under runs/<run>/….",
        )
        acknowledge(
            self.state_machine,
            "AwsSolutions-SF1",
            "Execution history in the console already records every state; CloudWatch gets ERROR-level events "
            "without execution data, so labels and image references do not leak into logs.",
        )
        for name, function in self.functions.items():
            prefixes = ["runs/", "config/"] if name == "RegisterPool" else ["runs/"]
            acknowledge_object_prefixes(
                function,
                bucket,
                prefixes,
                "Run data lives under runs/<run-id>/… with keys chosen per run, iteration and shard.",
            )
        acknowledge(
            self.functions["RegisterPool"],
            "AwsSolutions-IAM5",
            "RegisterPool queries the images table's sparse 'pending' index.",
            [f"Resource::{arn_token(storage.images_table)}/index/*"],
        )
        acknowledge(
            self.functions["Finalize"],
            "AwsSolutions-IAM5",
            "CDK's grant to publish on the KMS-encrypted topic includes kms:GenerateDataKey* on that one key.",
            ["Action::kms:GenerateDataKey*"],
        )

    def _state_machine_name_token(self) -> str:
        """How cdk-nag prints the state machine's name (the sixth field of its ARN)."""
        stack = Stack.of(self)
        logical_id = stack.resolve(stack.get_logical_id(self.state_machine.node.default_child))
        return '{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"%s"}]}]}' % logical_id
