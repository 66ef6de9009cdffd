"""The IAM role the loop's SageMaker training and transform jobs run under."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from boxloop.layout import IMAGES_PREFIX, RUNS_PREFIX
from infra.job_image import JobImage
from infra.nag import acknowledge, arn_token
from infra.run_key_patterns import ANY_RUN, every_iteration


def sagemaker_job_role(scope: Construct, *, bucket: s3.IBucket, job_image: JobImage) -> iam.Role:
    """The role (construct id ``SageMakerJobRole``): the run data, the job image, logs."""
    role = iam.Role(
        scope,
        "SageMakerJobRole",
        assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        description="boxloop training and batch-transform jobs",
    )
    bucket.grant_read(role, f"{RUNS_PREFIX}*")
    bucket.grant_read(role, f"{IMAGES_PREFIX}*")
    for output in (ANY_RUN.model_output, ANY_RUN.inference):  # training's model, batch transform's predictions
        bucket.grant_put(role, f"{every_iteration(output)}*")
    job_image.grant_pull(role)
    acknowledge(
        role,
        "AwsSolutions-IAM5",
        "Jobs write their output under runs/<run>/iterations/<NNNN>/{model,inference}/; run ids are chosen at run time.",
        [
            f"Resource::{arn_token(bucket)}/{every_iteration(output)}*"
            for output in (ANY_RUN.model_output, ANY_RUN.inference)
        ],
    )
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
    return role
