"""One container image for every boxloop Lambda, one ``cmd`` per function.

The handlers need the core package (pydantic, numpy, scipy, pycocotools, Pillow,
PyYAML, matplotlib), which does not fit a zip plus the Powertools layer. The image is
built from ``lambdas/Dockerfile`` (Debian, Python 3.11, the Lambda runtime interface
client) with the repository root as build context, for linux/amd64 whatever machine
builds it (the functions run on x86_64); CDK only stages the context at synth (no
Docker needed until ``cdk deploy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Duration, IgnoreMode, Size
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.nag import acknowledge
from infra.settings import EnvironmentSettings

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent

BUILD_CONTEXT_EXCLUDES = [
    "*",
    "!boxloop",
    "!lambdas",
    "boxloop/local",
    "**/__pycache__",
    "**/*.pyc",
]
"""Docker-ignore patterns: the build context is ``boxloop/`` (without the local run) and ``lambdas/`` only."""


def image_code(handler: str) -> lambda_.DockerImageCode:
    """The shared image, started with ``handler`` (``module.function``) as its command."""
    return lambda_.DockerImageCode.from_image_asset(
        str(REPOSITORY_ROOT),
        file="lambdas/Dockerfile",
        cmd=[handler],
        exclude=BUILD_CONTEXT_EXCLUDES,
        ignore_mode=IgnoreMode.DOCKER,
        platform=ecr_assets.Platform.LINUX_AMD64,
    )


def container_function(
    scope: Construct,
    construct_id: str,
    *,
    handler: str,
    description: str,
    service_name: str,
    environment: Mapping[str, str],
    settings: EnvironmentSettings,
    timeout: Duration = Duration.minutes(5),
    memory_size: int = 1024,
    ephemeral_storage_mb: int = 512,
    reserved_concurrency: int | None = None,
) -> lambda_.DockerImageFunction:
    """A Lambda running ``handler`` from the shared image as Powertools service ``service_name``, traced,
    with its own log group kept for ``settings.log_retention``."""
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=getattr(logs.RetentionDays, settings.log_retention),
    )
    function = lambda_.DockerImageFunction(
        scope,
        construct_id,
        code=image_code(handler),
        description=description,
        environment={**environment, "POWERTOOLS_SERVICE_NAME": service_name},
        timeout=timeout,
        memory_size=memory_size,
        ephemeral_storage_size=Size.mebibytes(ephemeral_storage_mb),
        architecture=lambda_.Architecture.X86_64,
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        reserved_concurrent_executions=reserved_concurrency,
    )
    acknowledge(
        function,
        "AwsSolutions-IAM4",
        "AWSLambdaBasicExecutionRole only lets the function write its own CloudWatch logs.",
        ["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
    )
    acknowledge(
        function,
        "AwsSolutions-IAM5",
        "X-Ray's PutTraceSegments/PutTelemetryRecords (active tracing) support no resource scoping.",
        ["Resource::*"],
    )
    return function
