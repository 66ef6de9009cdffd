"""The detector's SageMaker job image, built by CDK from ``sagemaker_jobs/Dockerfile``.

One image runs both jobs: ``train`` for the training jobs and ``serve`` for batch transform
(``sagemaker_jobs/container.py``). It holds Python 3.11 and ``sagemaker_jobs/requirements.txt``,
the versions the tests run, with the code baked in, so the asset's hash (and the image the
jobs run) changes with the code or the pins. CDK stages the build context at synth and builds it
with Docker at ``cdk deploy``, for linux/amd64 (SageMaker runs x86_64 images).
"""

from __future__ import annotations

from aws_cdk import IgnoreMode
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.lambda_image import REPOSITORY_ROOT

JOB_IMAGE_DOCKERFILE = "sagemaker_jobs/Dockerfile"
BUILD_CONTEXT_EXCLUDES = [
    "*",
    "!boxloop",
    "!sagemaker_jobs",
    "boxloop/local",
    "**/__pycache__",
    "**/*.pyc",
]
"""Docker-ignore patterns: the build context is ``boxloop/`` (without the local run) and ``sagemaker_jobs/``."""


class JobImage(Construct):
    """The job image asset; ``image`` is what the SageMaker tasks name, ``grant_pull`` lets a role run it."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.asset = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(REPOSITORY_ROOT),
            file=JOB_IMAGE_DOCKERFILE,
            exclude=BUILD_CONTEXT_EXCLUDES,
            ignore_mode=IgnoreMode.DOCKER,
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        self.image = tasks.DockerImage.from_registry(self.asset.image_uri)

    def grant_pull(self, role: iam.IGrantable) -> None:
        """Let ``role`` (the SageMaker job role) pull the image from CDK's asset repository."""
        self.asset.repository.grant_pull(role)
