"""The embedded backend's TransactWriteItems (patched in `semichat/aws/moto_patches.py`) keeps
DynamoDB's semantics: a cancelled transaction leaves no trace of itself and erases nothing it
did not touch."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError


def _table(dynamodb: Any) -> str:
    name = f"tx{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def _put(table: str, key: str, condition: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": table, "Item": {"k": {"S": key}, "v": {"S": "new"}}}
    if condition:
        op["ConditionExpression"] = condition
    return {"Put": op}


def _keys(dynamodb: Any, table: str) -> set[str]:
    return {i["k"]["S"] for i in dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]}


def test_a_cancelled_transaction_undoes_its_own_writes_only(dynamodb: Any) -> None:
    table = _table(dynamodb)
    dynamodb.put_item(TableName=table, Item={"k": {"S": "taken"}, "v": {"S": "old"}})
    dynamodb.put_item(TableName=table, Item={"k": {"S": "other"}, "v": {"S": "old"}})
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(
            TransactItems=[
                _put(table, "fresh"),
                _put(table, "taken", "attribute_not_exists(k)"),
            ]
        )
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _keys(dynamodb, table) == {"taken", "other"}
    item = dynamodb.get_item(TableName=table, Key={"k": {"S": "taken"}})["Item"]
    assert item["v"]["S"] == "old"


def test_a_committed_transaction_writes_every_item(dynamodb: Any) -> None:
    table = _table(dynamodb)
    dynamodb.transact_write_items(TransactItems=[_put(table, "a"), _put(table, "b")])
    assert _keys(dynamodb, table) == {"a", "b"}
