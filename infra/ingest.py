"""Ingest: ``incoming/`` uploads → SQS (batched) → the ingest Lambda; ``config/labeling.json`` → the config Lambda."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from boxloop.layout import (
    CONFIG_KEY,
    CONFIG_PREFIX,
    CONFIG_STATUS_KEY,
    IMAGES_PREFIX,
    INCOMING_PREFIX,
    QUARANTINE_PREFIX,
)
from infra.lambda_image import container_function
from infra.nag import acknowledge, acknowledge_object_prefixes, arn_token
from infra.queues import queue_with_dlq
from infra.settings import EnvironmentSettings
from infra.storage import Storage

INGEST_TIMEOUT = Duration.minutes(5)


class Ingest(Construct):
    """Validates and registers every upload; starts a run when enough images wait and none is active."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        storage: Storage,
        state_machine: sfn.IStateMachine,
        environment: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        bucket = storage.data_bucket
        self.queue, self.dead_letter_queue = queue_with_dlq(
            self, "UploadQueue", visibility_timeout=Duration.seconds(INGEST_TIMEOUT.to_seconds() * 6)
        )
        bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SqsDestination(self.queue),
            s3.NotificationKeyFilter(prefix=INCOMING_PREFIX),
        )
        self.ingest = container_function(
            self,
            "IngestFunction",
            handler="lambdas.ingest.handler.handler",
            description="Validates and registers uploaded images; quarantines bad ones; starts runs",
            service_name="boxloop-ingest",
            environment=environment,
            settings=settings,
            timeout=INGEST_TIMEOUT,
            memory_size=1024,
        )
        self.ingest.add_event_source(
            sources.SqsEventSource(
                self.queue, batch_size=50, max_batching_window=Duration.seconds(20), report_batch_item_failures=True
            )
        )
        self.config = container_function(
            self,
            "ConfigFunction",
            handler="lambdas.config.handler.handler",
            description="Validates an uploaded labelling configuration; starts a run when enough images wait",
            service_name="boxloop-config",
            environment=environment,
            settings=settings,
        )
        bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED, s3n.LambdaDestination(self.config), s3.NotificationKeyFilter(prefix=CONFIG_KEY)
        )
        for function in (self.ingest, self.config):
            storage.runs_table.grant_read_write_data(function)
            state_machine.grant_start_execution(function)
            bucket.grant_read(function, f"{CONFIG_PREFIX}*")
            acknowledge_object_prefixes(
                function,
                bucket,
                [CONFIG_PREFIX, QUARANTINE_PREFIX, INCOMING_PREFIX, IMAGES_PREFIX],
                "Uploads and their quarantine copies have user-chosen keys under incoming/ and quarantine/; "
                "registered images are content-addressed (images/<sha256>.<ext>); the configuration lives under config/.",
            )
        bucket.grant_read(self.ingest, f"{INCOMING_PREFIX}*")
        bucket.grant_delete(self.ingest, f"{INCOMING_PREFIX}*")
        bucket.grant_put(self.ingest, f"{QUARANTINE_PREFIX}*")
        bucket.grant_put(self.ingest, f"{IMAGES_PREFIX}*")  # the content-addressed copy of each registered image
        storage.images_table.grant_read_write_data(self.ingest)
        bucket.grant_put(self.config, CONFIG_STATUS_KEY)  # the config Lambda answers in labeling.status.json
        acknowledge(
            self.ingest,
            "AwsSolutions-IAM5",
            "Ingest queries the images table's indexes (the sparse 'pending' index) by name.",
            [f"Resource::{arn_token(storage.images_table)}/index/*"],
        )
