"""The mocked AWS account the Lambda tests share: its environment, the tables of docs/architecture.md, a Lambda context."""

from __future__ import annotations

from dataclasses import dataclass

REGION = "us-east-1"


@dataclass
class FakeLambdaContext:
    """The parts of a Lambda context that Powertools reads."""

    function_name: str = "boxloop-test"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def set_account_environment(monkeypatch, bucket: str, **variables: str) -> None:
    """Point the adapters at the mocked account: test credentials, ``bucket``, the table names, ``variables``."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "DATA_BUCKET": bucket,
        "IMAGES_TABLE": "images",
        "RUNS_TABLE": "runs",
        **variables,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def create_tables(dynamodb, *, idempotency: bool = False) -> None:
    """Create the ``images`` table (with its sparse ``pending`` index), ``runs``, and optionally ``idempotency``."""
    dynamodb.create_table(
        TableName="images",
        KeySchema=[{"AttributeName": "image_id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "image_id", "AttributeType": "S"},
            {"AttributeName": "pending_partition", "AttributeType": "S"},
            {"AttributeName": "pending_since", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "pending",
                "KeySchema": [
                    {"AttributeName": "pending_partition", "KeyType": "HASH"},
                    {"AttributeName": "pending_since", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName="runs",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    if idempotency:
        dynamodb.create_table(
            TableName="idempotency",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
