"""The loop's SageMaker states: train the detector, create its model, run batch inference over the pool.

All three run the job image (``infra/job_image.py``): ``train`` and ``serve`` of ``sagemaker_jobs/container.py``.
Pool inference asks for SageMaker's longest invocation timeout and one request at a time per instance; the
settings bound a request's images so it finishes within that timeout (``infra/settings.py``).
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Size
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra import state_names as states
from infra.settings import TRANSFORM_INVOCATION_TIMEOUT_SECONDS, EnvironmentSettings
from sagemaker_jobs.metric_definitions import METRIC_DEFINITIONS
from sagemaker_jobs.serving_layout import ENTRY_SCRIPT


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


def _channel(name: str, uri_path: str) -> tasks.Channel:
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


def training_task(
    scope: Construct,
    *,
    settings: EnvironmentSettings,
    role: iam.IRole,
    image: tasks.DockerImage,
    warm_start: bool,
) -> tasks.SageMakerCreateTrainingJob:
    """``TrainDetector`` (from the pretrained backbone) or ``TrainDetectorFromPreviousModel`` (fine-tuning)."""
    channels = [_channel("train", "$.iteration.uris.train"), _channel("validation", "$.iteration.uris.validation")]
    if warm_start:
        channels.append(_channel("warm_start", "$.iteration.uris.warm_start"))
    return tasks.SageMakerCreateTrainingJob(
        scope,
        states.TRAIN_DETECTOR_FROM_PREVIOUS_MODEL if warm_start else states.TRAIN_DETECTOR,
        comment="Fine-tunes the previous iteration's model"
        if warm_start
        else "Trains the detector from its pretrained backbone",
        training_job_name=job_name("train"),
        role=role,
        integration_pattern=sfn.IntegrationPattern.RUN_JOB,
        algorithm_specification=tasks.AlgorithmSpecification(
            training_image=image,
            training_input_mode=tasks.InputMode.FILE,
            metric_definitions=[tasks.MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in METRIC_DEFINITIONS],
        ),
        input_data_config=channels,
        output_data_config=tasks.OutputDataConfig(
            s3_output_location=tasks.S3Location.from_json_expression("$.iteration.uris.model_output")
        ),
        resource_config=tasks.ResourceConfig(
            instance_count=settings.training_instance_count,
            instance_type=ec2.InstanceType(settings.training_instance_type.removeprefix("ml.")),
            volume_size=Size.gibibytes(settings.training_volume_gb),
        ),
        stopping_condition=tasks.StoppingCondition(max_runtime=Duration.seconds(settings.training_max_runtime_seconds)),
        hyperparameters={
            "classes": sfn.JsonPath.string_at("$.iteration.hyperparameters.classes"),
            "label_attribute": sfn.JsonPath.string_at("$.iteration.hyperparameters.label_attribute"),
            "epochs": sfn.JsonPath.string_at("$.iteration.hyperparameters.epochs"),
            "min_steps": sfn.JsonPath.string_at("$.iteration.hyperparameters.min_steps"),
            "max_seconds": sfn.JsonPath.string_at("$.iteration.hyperparameters.max_seconds"),
            "model": sfn.JsonPath.string_at("$.iteration.hyperparameters.model"),
            "model_version": sfn.JsonPath.string_at("$.iteration.hyperparameters.model_version"),
        },
        environment={"AWS_DEFAULT_REGION": Aws.REGION},
        result_selector={
            "job_name.$": "$.TrainingJobName",
            "model_artifacts.$": "$.ModelArtifacts.S3ModelArtifacts",
        },
        result_path="$.training",
    )


def create_model_task(
    scope: Construct, *, settings: EnvironmentSettings, role: iam.IRole, image: tasks.DockerImage
) -> tasks.SageMakerCreateModel:
    """``CreateModel``: the trained artefact (weights, ``code/inference.py``) behind the job image's ``serve``."""
    return tasks.SageMakerCreateModel(
        scope,
        states.CREATE_MODEL,
        model_name=job_name("model"),
        role=role,
        primary_container=tasks.ContainerDefinition(
            image=image,
            mode=tasks.Mode.SINGLE_MODEL,
            model_s3_location=tasks.S3Location.from_json_expression("$.training.model_artifacts"),
            environment_variables=sfn.TaskInput.from_object(
                {
                    "SAGEMAKER_PROGRAM": ENTRY_SCRIPT,
                    "AWS_DEFAULT_REGION": Aws.REGION,
                }
            ),
        ),
        result_path=sfn.JsonPath.DISCARD,
    )


def transform_task(
    scope: Construct, *, settings: EnvironmentSettings, role: iam.IRole
) -> tasks.SageMakerCreateTransformJob:
    """``RunPoolInference``: a batch transform over the pool shards, one JSON line in and out per image."""
    return tasks.SageMakerCreateTransformJob(
        scope,
        states.RUN_POOL_INFERENCE,
        transform_job_name=job_name("infer"),
        model_name=job_name("model"),
        role=role,
        integration_pattern=sfn.IntegrationPattern.RUN_JOB,
        transform_input=tasks.TransformInput(
            transform_data_source=tasks.TransformDataSource(
                s3_data_source=tasks.TransformS3DataSource(
                    s3_uri=sfn.JsonPath.string_at("$.iteration.uris.inference_input"),
                    s3_data_type=tasks.S3DataType.S3_PREFIX,
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
        max_concurrent_transforms=1,
        model_client_options=tasks.ModelClientOptions(
            invocations_timeout=Duration.seconds(TRANSFORM_INVOCATION_TIMEOUT_SECONDS)
        ),
        result_selector={"job_name.$": "$.TransformJobName"},
        result_path="$.inference",
    )
