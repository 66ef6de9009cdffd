"""The labelling task table: the browser workforce's tasks, their leases and answers (prompts' table contract).

Items of a batch share a partition; the sparse ``claimable`` index holds only the tasks a labeller can
claim now or once their lease lapses (``claim_pk`` is removed when a task is answered), so a claim is
one Query plus one conditional UpdateItem, never a scan.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.nag import acknowledge
from infra.settings import EnvironmentSettings

LABELLING_TABLE_ENV = "LABELLING_TABLE"
CLAIMABLE_INDEX = "claimable"
EXPIRY_ATTRIBUTE = "expires_at"


def labelling_task_table(scope: Construct, construct_id: str, *, settings: EnvironmentSettings) -> dynamodb.Table:
    """On-demand, encrypted table keyed ``pk``/``sk`` with the sparse ``claimable`` index and ``expires_at`` TTL."""
    destroy = settings.removal_policy == "destroy"
    table = dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=settings.point_in_time_recovery
        ),
        time_to_live_attribute=EXPIRY_ATTRIBUTE,
        removal_policy=RemovalPolicy.DESTROY if destroy else RemovalPolicy.RETAIN,
    )
    table.add_global_secondary_index(
        index_name=CLAIMABLE_INDEX,
        partition_key=dynamodb.Attribute(name="claim_pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="available_at", type=dynamodb.AttributeType.NUMBER),
        projection_type=dynamodb.ProjectionType.ALL,
    )
    if not settings.point_in_time_recovery:
        acknowledge(table, "AwsSolutions-DDB3", "dev tables are disposable; point-in-time recovery is on in prod.")
    return table
