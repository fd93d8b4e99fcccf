"""Faults beneath botocore: each kind answers attempts at the wire, and botocore retries what
AWS's answer would make it retry. A counting proxy in front of the backend shows what reached
it (`wire_proxy.py`): a retried fault is attempts made = faulted attempts + the one the backend
received; a fault botocore does not retry reaches the app after one attempt and no request."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from semichat.aws.clients import AwsClients, open_clients
from semichat.aws.wire import WireCounters
from semichat.aws.wire.sqs import RECEIVED_FROM as RECEIVED
from semichat.aws.wire.sqs import SqsWire
from semichat.server.errors import backend_refusal
from semichat.server.faults import Nemesis
from semichat.settings import Settings

from .conftest import Backend
from .waiting import wait_for
from .wire_proxy import counting_proxy


class Scripted:
    """The nemesis's decisions, scripted: each kind strikes its first N attempts, then never."""

    def __init__(self, strikes: dict[str, int] | None = None, **values: float) -> None:
        self.left = Counter(strikes or {})
        self.values = values
        self.injected: Counter[str] = Counter()
        self.half = 0.9  # `uniform`: above one half, a failed send did not reach the queue

    def strikes(self, kind: str) -> bool:
        if self.left[kind] <= 0:
            return False
        self.left[kind] -= 1
        self.injected[kind] += 1
        return True

    def count(self, kind: str, n: int = 1) -> None:
        self.injected[kind] += n

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.half

    def value(self, kind: str) -> float:
        return float(self.values.get(kind, 0.0))

    def failure_code(self) -> tuple[str, int]:
        return ("ServiceUnavailable", 503)


@dataclass
class Wire:
    clients: AwsClients
    counters: WireCounters
    sqs_received: Counter[str]
    dynamodb_received: Counter[str]

    def retries(self, key: str) -> int:
        return sum(n for k, n in self.counters.retries.items() if k.startswith(key))


@asynccontextmanager
async def wire(backend: Backend, nemesis: Any) -> AsyncIterator[Wire]:
    async with (
        counting_proxy(backend.sqs_endpoint) as (sqs_url, sqs_received),
        counting_proxy(backend.dynamodb_endpoint) as (dynamodb_url, dynamodb_received),
    ):
        settings = Settings(
            sqs_endpoint=sqs_url, dynamodb_endpoint=dynamodb_url, dynamodb_max_attempts=4
        )
        counters = WireCounters()
        async with open_clients(settings, nemesis=nemesis, counters=counters) as clients:
            yield Wire(clients, counters, sqs_received, dynamodb_received)


def _name() -> str:
    return f"w{uuid.uuid4().hex[:10]}"


async def _queue(w: Wire, **attributes: str) -> str:
    name = _name() + (".fifo" if attributes.get("FifoQueue") else "")
    resp = await w.clients.sqs.create_queue(QueueName=name, Attributes=attributes)
    return str(resp["QueueUrl"])


def _code(exc: BaseException) -> str:
    assert isinstance(exc, ClientError)
    return str(exc.response["Error"]["Code"])


async def test_receive_errors_are_retried_by_botocore(backend: Backend) -> None:
    async with wire(backend, Scripted({"receive_error": 2})) as w:
        url = await _queue(w)
        resp = await w.clients.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
        assert resp["ResponseMetadata"]["RetryAttempts"] == 2
        assert w.sqs_received["ReceiveMessage"] == 1
        assert w.counters.retries["sqs.ReceiveMessage.ServiceUnavailable"] == 2
        assert w.counters.attempts["sqs.ReceiveMessage"] == 3
        assert not w.counters.errors


@pytest.mark.parametrize("reached", [False, True])
async def test_a_failed_send_is_retried_and_one_that_reached_the_queue_lands_twice(
    backend: Backend, reached: bool
) -> None:
    nemesis = Scripted({"send_error": 1})
    nemesis.half = 0.1 if reached else 0.9
    async with wire(backend, nemesis) as w:
        url = await _queue(w)
        resp = await w.clients.sqs.send_message(QueueUrl=url, MessageBody="hello")
        assert resp["ResponseMetadata"]["RetryAttempts"] == 1
        # The retry of a send whose first attempt reached the queue enqueues it again, as on AWS.
        assert w.sqs_received["SendMessage"] == (2 if reached else 1)
        got = await w.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        assert len(got.get("Messages", [])) == (2 if reached else 1)


async def test_failed_deletes_are_retried_by_botocore(backend: Backend) -> None:
    async with wire(backend, Scripted({"delete_fail": 2})) as w:
        url = await _queue(w)
        await w.clients.sqs.send_message(QueueUrl=url, MessageBody="m")
        [message] = (await w.clients.sqs.receive_message(QueueUrl=url))["Messages"]
        resp = await w.clients.sqs.delete_message(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"]
        )
        assert resp["ResponseMetadata"]["RetryAttempts"] == 2
        assert w.sqs_received["DeleteMessage"] == 1


async def test_a_throttled_create_queue_is_retried_by_botocore(backend: Backend) -> None:
    async with wire(backend, Scripted({"create_throttle": 1})) as w:
        resp = await w.clients.sqs.create_queue(QueueName=_name())
        assert resp["ResponseMetadata"]["RetryAttempts"] == 1
        assert w.sqs_received["CreateQueue"] == 1
        assert w.counters.retries["sqs.CreateQueue.RequestThrottled"] == 1


async def test_over_the_queue_quota_create_is_refused_without_retry(backend: Backend) -> None:
    async with wire(backend, Scripted(queue_quota=1)) as w:
        await _queue(w)
        with pytest.raises(ClientError) as info:
            await _queue(w)
        assert _code(info.value) == "OverLimit"
        assert backend_refusal(info.value) is not None
        assert w.sqs_received["CreateQueue"] == 1 and w.counters.attempts["sqs.CreateQueue"] == 2
        assert w.counters.errors["sqs.CreateQueue.OverLimit"] == 1


async def test_a_queue_name_is_refused_for_a_while_after_its_deletion(backend: Backend) -> None:
    nemesis = Scripted(queue_deleted_recently=1.0)
    async with wire(backend, nemesis) as w:
        name = _name()
        url = (await w.clients.sqs.create_queue(QueueName=name))["QueueUrl"]
        await w.clients.sqs.delete_queue(QueueUrl=url)
        with pytest.raises(ClientError) as info:
            await w.clients.sqs.create_queue(QueueName=name)
        assert _code(info.value) == "AWS.SimpleQueueService.QueueDeletedRecently"
        assert backend_refusal(info.value) is not None
        assert w.sqs_received["CreateQueue"] == 1  # refused at the wire, not retried

        async def created() -> bool:
            try:
                await w.clients.sqs.create_queue(QueueName=name)
            except ClientError:
                return False
            return True

        await wait_for(created, 10, "the name free again after its window")
        assert w.sqs_received["CreateQueue"] == 2


async def test_short_polls_past_the_in_flight_limit_get_over_limit(backend: Backend) -> None:
    async with wire(backend, Scripted(inflight_limit=2)) as w:
        url = await _queue(w)
        for i in range(3):
            await w.clients.sqs.send_message(QueueUrl=url, MessageBody=str(i))
        held: list[dict[str, Any]] = []
        while len(held) < 2:
            got = await w.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
            held += got.get("Messages", [])
        with pytest.raises(ClientError) as info:
            await w.clients.sqs.receive_message(QueueUrl=url)
        assert _code(info.value) == "OverLimit" and backend_refusal(info.value) is not None
        # A delete frees a place; a long poll is not refused (AWS: it returns nothing).
        await w.clients.sqs.delete_message(QueueUrl=url, ReceiptHandle=held[0]["ReceiptHandle"])
        third = await w.clients.sqs.receive_message(QueueUrl=url)
        assert len(third["Messages"]) == 1
        with pytest.raises(ClientError):
            await w.clients.sqs.receive_message(QueueUrl=url)
        await w.clients.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
        assert w.sqs_received["ReceiveMessage"] == 4


async def test_fifo_requests_past_the_rate_are_throttled_and_retried(backend: Backend) -> None:
    async with wire(backend, Scripted(fifo_tps=1)) as w:
        url = await _queue(w, FifoQueue="true", ContentBasedDeduplication="true")
        sent = 0
        for i in range(5):
            try:
                await w.clients.sqs.send_message(
                    QueueUrl=url, MessageBody=str(i), MessageGroupId="g"
                )
                sent += 1
            except ClientError as exc:
                # Three attempts within the same second are all throttled, as on AWS.
                assert _code(exc) == "ThrottlingException"
        assert w.retries("sqs.SendMessage.ThrottlingException") >= 1
        assert w.sqs_received["SendMessage"] == sent >= 1


async def test_a_message_over_the_size_limit_is_refused(backend: Backend) -> None:
    async with wire(backend, Scripted(message_size=1024)) as w:
        url = await _queue(w)
        with pytest.raises(ClientError) as info:
            await w.clients.sqs.send_message(QueueUrl=url, MessageBody="x" * 1025)
        assert _code(info.value) == "InvalidParameterValue"
        assert w.counters.attempts["sqs.SendMessage"] == 1 and w.sqs_received["SendMessage"] == 0
        await w.clients.sqs.send_message(QueueUrl=url, MessageBody="x" * 1024)
        # A queue created with its own MaximumMessageSize keeps it.
        larger = await _queue(w, MaximumMessageSize="2048")
        await w.clients.sqs.send_message(QueueUrl=larger, MessageBody="x" * 2048)
        with pytest.raises(ClientError):
            await w.clients.sqs.send_message(QueueUrl=larger, MessageBody="x" * 2049)
        assert w.sqs_received["SendMessage"] == 2


async def _table(w: Wire) -> str:
    name = _name()
    await w.clients.dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


async def test_dynamodb_throttling_is_retried_by_botocore(backend: Backend) -> None:
    async with wire(backend, Scripted({"dynamodb_throttle": 2})) as w:
        table = await _table(w)
        resp = await w.clients.dynamodb.get_item(TableName=table, Key={"k": {"S": "a"}})
        assert resp["ResponseMetadata"]["RetryAttempts"] == 2
        assert w.dynamodb_received["GetItem"] == 1
        assert w.counters.retries["dynamodb.GetItem.ProvisionedThroughputExceededException"] == 2


async def test_dynamodb_capacity_throttles_a_burst_and_botocore_retries_it(
    backend: Backend,
) -> None:
    nemesis = Nemesis.from_text("dynamodb_capacity=10")
    async with wire(backend, nemesis) as w:
        table = await _table(w)
        for i in range(20):
            await w.clients.dynamodb.put_item(TableName=table, Item={"k": {"S": str(i)}})
        assert nemesis.injected["dynamodb_capacity"] >= 1
        assert w.retries("dynamodb.PutItem.ProvisionedThroughputExceededException") >= 1
        assert w.dynamodb_received["PutItem"] == 20 and not w.counters.errors


async def test_a_conflicting_transaction_is_cancelled_and_not_retried(backend: Backend) -> None:
    async with wire(backend, Scripted({"dynamodb_conflict": 1})) as w:
        table = await _table(w)
        items = [{"Put": {"TableName": table, "Item": {"k": {"S": k}}}} for k in "ab"]
        with pytest.raises(ClientError) as info:
            await w.clients.dynamodb.transact_write_items(TransactItems=items)
        assert _code(info.value) == "TransactionCanceledException"
        reasons = [r["Code"] for r in info.value.response["CancellationReasons"]]
        assert reasons == ["TransactionConflict", "None"]
        assert backend_refusal(info.value) is not None
        assert w.dynamodb_received["TransactWriteItems"] == 0
        await w.clients.dynamodb.transact_write_items(TransactItems=items)
        assert w.dynamodb_received["TransactWriteItems"] == 1


async def test_an_eventually_consistent_read_misses_a_fresh_write(backend: Backend) -> None:
    async with wire(backend, Scripted(stale_read=30)) as w:
        table = await _table(w)
        await w.clients.dynamodb.put_item(TableName=table, Item={"k": {"S": "a"}})
        key = {"k": {"S": "a"}}
        stale = await w.clients.dynamodb.get_item(TableName=table, Key=key)
        assert "Item" not in stale and w.dynamodb_received["GetItem"] == 0
        fresh = await w.clients.dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)
        assert fresh["Item"] == key and w.dynamodb_received["GetItem"] == 1


def test_results_carry_botocore_retries_by_code() -> None:
    from semichat.harness.report import botocore_counts

    key = "sqs.ReceiveMessage.ServiceUnavailable"
    metrics = {
        "before": {"botocore": {"retries": {key: 1}}},
        "after": {"botocore": {"retries": {key: 3, "dynamodb.GetItem.ServiceUnavailable": 2}}},
    }
    counts = botocore_counts(metrics)
    assert counts["retries"] == {"dynamodb.GetItem.ServiceUnavailable": 2, key: 2}
    assert counts["retries_by_code"] == {"ServiceUnavailable": 4}
    assert counts["errors"] == {} and counts["errors_by_code"] == {}


class _Request:
    """A prepared request as the `before-send` handler sees it (JSON body, per-call context)."""

    def __init__(self, **params: Any) -> None:
        self.body = json.dumps(params).encode()
        self.url = "http://sqs/"
        self.context: dict[str, Any] = {}


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_in_flight_record_follows_visibility_changes_and_timeouts() -> None:
    clock = _Clock()
    sqs = SqsWire(SimpleNamespace(), Scripted(inflight_limit=2), clock)
    url = "http://sqs/123/q"

    async def short_poll() -> Any:
        request = _Request(QueueUrl=url, WaitTimeSeconds=0)
        return await sqs.before_send(request, "before-send.sqs.ReceiveMessage"), request

    async def received(*handles: str, visibility: int | None = None) -> None:
        answer, request = await short_poll()
        assert answer is None
        request.context[RECEIVED] = (url, visibility)
        sqs._on_received({"Messages": [{"ReceiptHandle": h} for h in handles]}, request.context)

    await received("a", "b", visibility=10)
    refused, _ = await short_poll()
    assert refused is not None and refused.status_code == 403  # OverLimit: 2 in flight
    # A visibility change to 0 makes one visible again; one to 60 keeps the other longer.
    await sqs.before_send(
        _Request(QueueUrl=url, ReceiptHandle="a", VisibilityTimeout=0),
        "before-send.sqs.ChangeMessageVisibility",
    )
    await sqs.before_send(
        _Request(QueueUrl=url, ReceiptHandle="b", VisibilityTimeout=60),
        "before-send.sqs.ChangeMessageVisibility",
    )
    await received("c", visibility=10)
    assert (await short_poll())[0] is not None  # b and c
    clock.now += 11  # c's timeout ran out, b's (60 s) did not
    await received("d", visibility=10)
    assert (await short_poll())[0] is not None  # b and d
