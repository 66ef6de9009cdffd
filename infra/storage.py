"""The data bucket and the DynamoDB tables (DESIGN.md "Identities and storage", architecture.md "Storage")."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from boxloop.layout import QUARANTINE_PREFIX
from infra.nag import acknowledge
from infra.settings import EnvironmentSettings

SCRATCH_TAG_KEY = "boxloop-retention"
SCRATCH_TAG_VALUE = "scratch"
"""Objects tagged so (iteration scratch: training inputs, inference output, routing shards) expire by lifecycle."""

PENDING_INDEX = "pending"


class Storage(Construct):
    """The environment's data bucket (plus its access-log bucket) and the images, runs and idempotency tables."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.DESTROY if settings.removal_policy == "destroy" else RemovalPolicy.RETAIN
        destroy = settings.removal_policy == "destroy"

        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireAccessLogs", expiration=Duration.days(365))],
            removal_policy=removal,
        )
        acknowledge(
            self.access_log_bucket,
            "AwsSolutions-S1",
            "This is the access-log bucket itself; logging it into itself would loop.",
        )

        lifecycle = [
            s3.LifecycleRule(
                id="ExpireQuarantine",
                prefix=QUARANTINE_PREFIX,
                expiration=Duration.days(settings.quarantine_expiry_days),
            ),
            s3.LifecycleRule(
                id="ExpireIterationScratch",
                tag_filters={SCRATCH_TAG_KEY: SCRATCH_TAG_VALUE},
                expiration=Duration.days(settings.scratch_expiry_days),
            ),
            s3.LifecycleRule(id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=Duration.days(2)),
        ]
        if settings.versioned_bucket:
            lifecycle.append(s3.LifecycleRule(id="ExpireOldVersions", noncurrent_version_expiration=Duration.days(90)))
        self.data_bucket = s3.Bucket(
            self,
            "DataBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=settings.versioned_bucket,
            lifecycle_rules=lifecycle,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="data-bucket/",
            removal_policy=removal,
        )

        point_in_time = dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=settings.point_in_time_recovery
        )
        table_props = dict(
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=point_in_time,
            removal_policy=removal,
        )
        self.images_table = dynamodb.Table(
            self,
            "ImagesTable",
            partition_key=dynamodb.Attribute(name="image_id", type=dynamodb.AttributeType.STRING),
            **table_props,
        )
        self.images_table.add_global_secondary_index(
            index_name=PENDING_INDEX,
            partition_key=dynamodb.Attribute(name="pending_partition", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="pending_since", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        self.runs_table = dynamodb.Table(
            self,
            "RunsTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            **table_props,
        )
        self.idempotency_table = dynamodb.Table(
            self,
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expiration",
            **table_props,
        )
        if destroy:
            for table in (self.images_table, self.runs_table, self.idempotency_table):
                acknowledge(
                    table,
                    "AwsSolutions-DDB3",
                    "dev tables are disposable; point-in-time recovery is on in prod.",
                )
