"""The embedded DynamoDB's transactions with the hook: all or nothing as in moto, without copying whole tables."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import Item

from boxloop.local import dynamodb_transactions

TABLE = "images"


@pytest.fixture
def dynamodb() -> Iterator[object]:
    dynamodb_transactions.install()
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(
                TableName=TABLE,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            for number in range(200):
                client.put_item(TableName=TABLE, Item={"pk": {"S": f"IMAGE#{number}"}, "sk": {"S": "META"}})
            client.put_item(TableName=TABLE, Item={"pk": {"S": "COUNTER"}, "sk": {"S": "C"}, "n": {"N": "5"}})
            yield client
    finally:
        dynamodb_transactions.uninstall()


def _register(number: int, condition: str = "attribute_not_exists(pk)") -> list[dict]:
    return [
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": f"IMAGE#{number}"}, "sk": {"S": "META"}},
                 "ConditionExpression": condition}},
        {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "COUNTER"}, "sk": {"S": "C"}},
                    "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
    ]  # fmt: skip


def _counter(client) -> str:
    return client.get_item(TableName=TABLE, Key={"pk": {"S": "COUNTER"}, "sk": {"S": "C"}})["Item"]["n"]["N"]


def test_a_transaction_writes_all_its_items_without_copying_the_table(dynamodb, monkeypatch) -> None:
    copies = []
    original = Item.__deepcopy__
    monkeypatch.setattr(Item, "__deepcopy__", lambda item, memo: copies.append(item) or original(item, memo))
    dynamodb.transact_write_items(TransactItems=_register(500))
    assert _counter(dynamodb) == "6"
    assert "Item" in dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "IMAGE#500"}, "sk": {"S": "META"}})
    assert len(copies) <= 2  # the two named items, not 2 x 201 for two copies of the table


def test_a_failed_transaction_changes_nothing(dynamodb) -> None:
    new_then_existing = [*_register(600), *_register(7)[:1]]  # image 7 exists: its condition fails
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=new_then_existing)
    assert _counter(dynamodb) == "5"
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "IMAGE#600"}, "sk": {"S": "META"}})
    assert dynamodb.scan(TableName=TABLE, Select="COUNT")["Count"] == 201


def test_a_malformed_transaction_gets_moto_s_own_error(dynamodb) -> None:
    with pytest.raises(dynamodb.exceptions.ClientError):
        dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": TABLE, "Item": {"pk": {"S": "x"}}}}])
    assert dynamodb.scan(TableName=TABLE, Select="COUNT")["Count"] == 201
