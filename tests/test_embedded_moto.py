"""The embedded backend's TransactWriteItems and Query (patched in
`semichat/emulator/patches/core.py`) keep DynamoDB's semantics: a cancelled transaction leaves no
trace of itself and erases nothing it did not touch; a query reads its own partition, in
order."""

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


def _ranged_table(dynamodb: Any, name: str, hash_key: str, range_key: str) -> str:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": range_key, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": hash_key, "AttributeType": "S"},
            {"AttributeName": range_key, "AttributeType": "S"},
        ],
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


def test_a_query_reads_its_partition_in_order_and_pages(dynamodb: Any) -> None:
    table = _ranged_table(dynamodb, f"q{uuid.uuid4().hex[:8]}", "p", "r")
    for p in ("a", "b", "c"):
        for r in ("3", "1", "2", "5", "4"):
            dynamodb.put_item(TableName=table, Item={"p": {"S": p}, "r": {"S": r}})

    def query(**kwargs: Any) -> dict[str, Any]:
        return dynamodb.query(
            TableName=table,
            KeyConditionExpression="p = :p",
            ExpressionAttributeValues={":p": {"S": "b"}},
            ConsistentRead=True,
            **kwargs,
        )

    def ranges(resp: dict[str, Any]) -> list[str]:
        assert {i["p"]["S"] for i in resp["Items"]} <= {"b"}
        return [i["r"]["S"] for i in resp["Items"]]

    assert ranges(query()) == ["1", "2", "3", "4", "5"]
    first = query(ScanIndexForward=False, Limit=2)
    assert ranges(first) == ["5", "4"]
    rest = query(ScanIndexForward=False, ExclusiveStartKey=first["LastEvaluatedKey"])
    assert ranges(rest) == ["3", "2", "1"]
    none = dynamodb.query(
        TableName=table,
        KeyConditionExpression="p = :p",
        ExpressionAttributeValues={":p": {"S": "nobody"}},
    )
    assert none["Items"] == []


def test_items_of_every_attribute_type_come_back_as_they_were_written(dynamodb: Any) -> None:
    # The patched attribute picker takes a dict's own key at once: every type, nested lists
    # and maps, a dotted name and a member named like its shape must still come back whole.
    table = _table(dynamodb)
    item = {
        "k": {"S": "all"},
        "s": {"S": "text"},
        "n": {"N": "12.5"},
        "b": {"B": b"\x00\x01"},
        "t": {"BOOL": True},
        "z": {"NULL": True},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2"]},
        "bs": {"BS": [b"x"]},
        "l": {"L": [{"S": "x"}, {"L": [{"N": "1"}]}, {"M": {"q": {"S": "deep"}}}]},
        "m": {"M": {"ListAttributeValue": {"S": "shape-named"}, "L": {"L": []}}},
        "a.b": {"S": "dotted"},
    }
    dynamodb.put_item(TableName=table, Item=item)
    got = dynamodb.get_item(TableName=table, Key={"k": {"S": "all"}}, ConsistentRead=True)
    [queried] = dynamodb.query(
        TableName=table,
        KeyConditionExpression="k = :k",
        ExpressionAttributeValues={":k": {"S": "all"}},
    )["Items"]
    for answer in (got["Item"], queried):
        assert _canonical(answer) == _canonical(item)


def _canonical(item: dict[str, Any]) -> dict[str, Any]:
    """Sets come back in any order."""
    sets = ("SS", "NS", "BS")
    return {k: {t: sorted(x) if t in sets else x for t, x in v.items()} for k, v in item.items()}


def test_the_kept_host_lookup_answers_as_moto_does() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from semichat.emulator.patches import core as moto_patches

    moto_patches.apply()
    patched = DomainDispatcherApplication.get_backend_for_host
    original = patched.__wrapped__  # type: ignore[attr-defined]
    app = DomainDispatcherApplication(create_backend_app)
    hosts = ["sqs.us-east-1.amazonaws.com", "dynamodb.eu-west-1.amazonaws.com", "moto_api",
             "sqs", "not-a-service.example", None]  # fmt: skip
    for _ in range(2):  # the second round answers from what the first kept
        assert [patched(app, h) for h in hosts] == [original(app, h) for h in hosts]
    assert [patched(app, h) for h in hosts[:4]] == ["sqs", "dynamodb", "moto_api", "sqs"]


def test_dynamodb_answers_dumped_as_they_are_equal_moto_s_shape_walk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every DynamoDB call the app makes, and the other shapes an answer can take (binary
    values, nested types, paging keys, consumed capacity), answered both ways: what botocore
    reads from the two is the same (it reads the output shape's members, nothing else)."""
    import boto3
    from botocore.parsers import create_parser
    from moto import mock_aws
    from moto.dynamodb.responses import DynamoResult

    from semichat.emulator.patches import core as moto_patches

    moto_patches.apply()
    dumped = DynamoResult.execute_result
    walked = dumped.__wrapped__  # type: ignore[attr-defined]
    answers: list[tuple[str, Any, Any]] = []

    def both(self: Any, context: Any) -> Any:
        answers.append((context.operation_model, walked(self, context), dumped(self, context)))
        return answers[-1][2]

    monkeypatch.setattr(DynamoResult, "execute_result", both)
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        _ranged_table(db, "t", "c", "s")
        db.describe_table(TableName="t")
        for i in range(5):
            item = {
                "c": {"S": "c1"},
                "s": {"S": f"{i:03}"},
                "n": {"N": str(i)},
                "b": {"B": bytes([i, 255])},
                "ok": {"BOOL": i % 2 == 0},
                "z": {"NULL": True},
                "l": {"L": [{"S": "x"}, {"M": {"q": {"BS": [b"\x00"]}}}]},
                "ss": {"SS": ["a"]},
            }
            db.put_item(TableName="t", Item=item, ReturnConsumedCapacity="TOTAL")
        key = {"c": {"S": "c1"}, "s": {"S": "001"}}
        db.get_item(TableName="t", Key=key, ConsistentRead=True)
        db.get_item(TableName="t", Key={"c": {"S": "none"}, "s": {"S": "0"}})
        page = db.query(
            TableName="t",
            KeyConditionExpression="c = :c",
            Limit=2,
            ExpressionAttributeValues={":c": {"S": "c1"}},
            ScanIndexForward=False,
        )
        db.query(
            TableName="t",
            KeyConditionExpression="c = :c",
            ExclusiveStartKey=page["LastEvaluatedKey"],
            ExpressionAttributeValues={":c": {"S": "c1"}},
            ProjectionExpression="s, b",
        )
        db.query(
            TableName="t",
            KeyConditionExpression="c = :c",
            Select="COUNT",
            ExpressionAttributeValues={":c": {"S": "c1"}},
        )
        for returns in ("NONE", "ALL_NEW", "UPDATED_OLD"):
            db.update_item(
                TableName="t",
                Key=key,
                UpdateExpression="SET n = n + :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues=returns,
            )
        db.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": "t",
                        "Item": {"c": {"S": "c2"}, "s": {"S": "a"}},
                        "ConditionExpression": "attribute_not_exists(c)",
                    }
                },
                {
                    "Update": {
                        "TableName": "t",
                        "Key": key,
                        "UpdateExpression": "SET ok = :t",
                        "ExpressionAttributeValues": {":t": {"BOOL": True}},
                    }
                },
            ]
        )
        db.batch_get_item(RequestItems={"t": {"Keys": [key]}})
        db.delete_item(TableName="t", Key=key, ReturnValues="ALL_OLD")
        db.scan(TableName="t")
    assert {op.name for op, _, _ in answers} >= moto_patches.ITEM_ANSWERS
    parser = create_parser("json")

    def read(op: Any, status: int, headers: dict[str, str], body: str) -> Any:
        answer = {"status_code": status, "headers": headers, "body": body.encode()}
        read = parser.parse(answer, op.output_shape)
        read.pop("ResponseMetadata", None)
        return read

    for op, walked_answer, dumped_answer in answers:
        assert walked_answer[2], op.name
        assert dumped_answer[1]["Content-Type"] == walked_answer[1]["Content-Type"]
        assert read(op, *dumped_answer) == read(op, *walked_answer), op.name


def test_a_queue_counts_its_visible_in_flight_and_delayed_messages_apart(sqs: Any) -> None:
    url = sqs.create_queue(QueueName=f"counts-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    [taken] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"]
    names = [
        "ApproximateNumberOf" + n for n in ("Messages", "MessagesNotVisible", "MessagesDelayed")
    ]
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    assert [int(counts[n]) for n in names] == [1, 1, 1]
    # What is left to receive is the other visible one: not the taken one, not the delayed one.
    [left] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert {taken["Body"], left["Body"]} == {"a", "b"}


def test_a_fifo_queue_deduplicates_by_content_and_still_reports_all_its_attributes(
    sqs: Any,
) -> None:
    """SendMessage reads one attribute of its queue (moto_overheads answers it alone during a
    send): content-based deduplication must still see it, single and batched, and the queue's
    attributes read afterwards must still be all of them."""
    url = sqs.create_queue(
        QueueName=f"dedup-{uuid.uuid4().hex[:8]}.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    for _ in range(2):
        sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    batch = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "1", "MessageBody": "same", "MessageGroupId": "g"},
            {"Id": "2", "MessageBody": "other", "MessageGroupId": "g"},
        ],
    )
    assert len(batch["Successful"]) == 2
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ContentBasedDeduplication"] == "true"
    assert attributes["FifoQueue"] == "true"
    assert int(attributes["ApproximateNumberOfMessages"]) == 2  # "same" once, "other" once
    bodies = [
        m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    ]
    assert bodies == ["same", "other"]
    plain = sqs.create_queue(QueueName=f"plain-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for _ in range(2):
        sqs.send_message(QueueUrl=plain, MessageBody="same")
    counted = sqs.get_queue_attributes(QueueUrl=plain, AttributeNames=["All"])["Attributes"]
    assert int(counted["ApproximateNumberOfMessages"]) == 2
    assert "ContentBasedDeduplication" not in counted


def test_a_deleted_handle_deletes_again(sqs: Any) -> None:
    """As on SQS: deleting a message twice with its handle succeeds both times."""
    url = sqs.create_queue(QueueName=f"again-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")
    [message] = sqs.receive_message(QueueUrl=url)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_a_queue_keeps_only_its_most_recently_deleted_handles() -> None:
    """moto kept every handle a queue ever deleted (a backend that grew without end); the
    patched queue keeps those deleted within `DELETED_HANDLES_KEPT_S`, at most
    `DELETED_HANDLES_KEPT`."""
    from moto.sqs.models import Queue

    from semichat.emulator.patches import core as moto_patches

    moto_patches.apply()
    queue = Queue("recent", "us-east-1", "123456789012")
    assert isinstance(queue.deleted_messages, moto_patches.RecentHandles)
    now = [0.0]
    kept = moto_patches.RecentHandles(keep_s=60, limit=3, clock=lambda: now[0])
    kept.update(["a", "b", "c", "d"])
    assert "a" not in kept and all(h in kept for h in "bcd") and len(kept) == 3
    kept.discard("b")
    assert "b" not in kept and len(kept) == 2
    now[0] = 30.0
    kept.add("e")
    assert all(h in kept for h in "cde")
    now[0] = 61.0  # c and d were deleted 61 s ago, e 31 s ago
    kept.add("f")
    assert "c" not in kept and "d" not in kept and all(h in kept for h in "ef")
