"""Idempotent sends: concurrent retries store and announce a message once, and a retry
finishes the fan-out of a message whose first attempt was stored but not announced.

One app serialises retries of a key in-process (`ChatService.send`), so only retries that reach
two app instances on one backend race where production races: in DynamoDB's conditional writes.
Those tests run two instances, as two server processes behind a load balancer would.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from semichat.aws.clients import open_clients
from semichat.aws.tables import IDEMPOTENCY, table_names
from semichat.server.api.app import create_app
from semichat.server.api.appkeys import CHAT, ROUTER
from semichat.server.chat.payloads import SendCommand
from semichat.server.chat.service import IDEMPOTENCY_TTL_S, ChatService
from semichat.server.chat.store import ChatStore, IdempotencyRecord, Message, idempotency_record
from semichat.server.errors import Unavailable
from semichat.settings import Settings

from .sse_helpers import data, next_events
from .test_api import history, new_conversation, send
from .test_stream import open_stream

Client = TestClient[Any, Any]


def queued(sqs: Any, settings: Settings, user: str) -> int:
    urls = sqs.list_queues(QueueNamePrefix=f"{settings.queue_prefix}{user}").get("QueueUrls", [])
    if not urls:
        return 0
    [url] = urls
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


@pytest.fixture
async def second_client(aiohttp_client: Any, client: Client, settings: Settings) -> Client:
    """A second app instance on the same backend, tables and queues as `client`."""
    app = create_app(settings)
    return await aiohttp_client(app, server_kwargs={"handler_cancellation": True})


async def _assert_sent_once(
    responses: list[Any], client: Client, conversation: str, sqs: Any, settings: Settings
) -> None:
    statuses = Counter(r.status for r in responses)
    assert statuses == {201: 1, 200: len(responses) - 1}
    bodies = [await r.json() for r in responses]
    assert len({b["messageId"] for b in bodies}) == 1
    assert sum(b["duplicate"] for b in bodies) == len(responses) - 1
    messages = (await (await history(client, "bob", conversation)).json())["messages"]
    assert len(messages) == 1
    assert queued(sqs, settings, "bob") == 1
    assert queued(sqs, settings, "alice") == 1


async def test_concurrent_retries_store_and_enqueue_once(
    client: Client, sqs: Any, settings: Settings
) -> None:
    conversation = await new_conversation(client, "alice", "bob")
    responses = await asyncio.gather(
        *(send(client, "alice", conversation, "exactly once", "retry-key") for _ in range(20))
    )
    await _assert_sent_once(responses, client, conversation, sqs, settings)


async def test_concurrent_retries_on_two_servers_store_and_enqueue_once(
    client: Client, second_client: Client, sqs: Any, settings: Settings
) -> None:
    conversation = await new_conversation(client, "alice", "bob")
    servers = (client, second_client)
    responses = await asyncio.gather(
        *(send(servers[i % 2], "alice", conversation, "once", "two-servers") for i in range(20))
    )
    await _assert_sent_once(responses, client, conversation, sqs, settings)


async def test_an_idempotency_record_expires_a_day_after_its_send(
    client: Client, dynamodb: Any, settings: Settings
) -> None:
    """The record carries the time DynamoDB's TTL deletes it at: a day after the send."""
    conversation = await new_conversation(client, "alice", "bob")
    before = time.time()
    assert (await send(client, "alice", conversation, "kept a day", "ttl-key")).status == 201
    after = time.time()
    table = table_names(settings.table_prefix)[IDEMPOTENCY]
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiresAt")
    item = dynamodb.get_item(
        TableName=table, Key={"idempotencyId": {"S": "alice#ttl-key"}}, ConsistentRead=True
    )["Item"]
    assert "expiresAt" in item, item
    # Marked notified by the batched put of the whole record (`marks.py`): nothing else lost.
    assert item["notified"] == {"BOOL": True}
    assert item["messageId"]["S"] and item["textHash"]["S"] and item["createdAt"]["S"]
    expires_at = int(item["expiresAt"]["N"])
    # Whole seconds from the send's clock, read somewhere between before and after.
    assert int(before) + IDEMPOTENCY_TTL_S <= expires_at <= int(after) + IDEMPOTENCY_TTL_S


async def test_a_first_send_reads_no_record_and_a_retry_reads_the_one_it_finds(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send stores with one transaction; only when that finds the key taken does it read the
    record, to answer with the message the key already names."""
    conversation = await new_conversation(client, "alice", "bob")
    store = client.app[CHAT]._store
    reads: list[IdempotencyRecord | None] = []
    read = store.get_idempotency

    async def counted(key: str) -> IdempotencyRecord | None:
        reads.append(await read(key))
        return reads[-1]

    monkeypatch.setattr(store, "get_idempotency", counted)
    first = await send(client, "alice", conversation, "once", "read-key")
    assert first.status == 201 and reads == []
    again = await send(client, "alice", conversation, "once", "read-key")
    assert again.status == 200
    [record] = reads
    assert record is not None
    message_id = (await first.json())["messageId"]
    assert record.message_id == message_id == (await again.json())["messageId"]


async def test_concurrent_lease_claims_have_exactly_one_winner(
    client: Client, settings: Settings
) -> None:
    """Two processes' stores claim the fan-out of one unannounced message at once."""
    # `client` has created the tables.
    async with open_clients(settings) as a, open_clients(settings) as b:
        stores = [ChatStore(c.dynamodb, settings.table_prefix) for c in (a, b)]
        for round_ in range(5):
            key = f"alice#{uuid.uuid4().hex}"
            message = Message(uuid.uuid4().hex, "c", "alice", "t", f"2024-01-01T00:00:0{round_}Z")
            # Stored with a lease that has already run out, as after a crashed fan-out.
            record = idempotency_record(message, key, "h", 0, 2**31)
            assert await stores[0].store_message(message, record) is None
            now_ms = int(time.time() * 1000)
            wins = await asyncio.gather(
                *(stores[i % 2].claim_fanout(key, now_ms, now_ms + 10_000) for i in range(10))
            )
            assert sum(wins) == 1, (round_, wins)
            # The lease now held, a later claim fails until it runs out.
            assert not await stores[1].claim_fanout(key, now_ms + 1, now_ms + 10_000)
            assert await stores[1].claim_fanout(key, now_ms + 10_001, now_ms + 20_000)


class FlakyPublish:
    """Fails the first `failures` publishes, like an SQS outage mid-send."""

    def __init__(self, publish: Any, failures: int) -> None:
        self._publish = publish
        self.failures = failures

    async def __call__(self, recipients: Any, notification: Any) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("SQS unreachable")
        await self._publish(recipients, notification)


async def test_failed_fan_out_is_finished_by_one_of_many_retries(
    client: Client, sqs: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation = await new_conversation(client, "alice", "bob")
    router = client.app[ROUTER]
    monkeypatch.setattr(router, "publish", FlakyPublish(router.publish, failures=1))

    first = await send(client, "alice", conversation, "stored, not announced", "k")
    assert first.status == 503
    assert "same idempotency key" in (await first.json())["error"]
    # Counted, so a run can bound the duplicates its retries announce.
    metrics = await (await client.get("/metrics")).json()
    assert metrics["refusals"] == {"fanout": 1}
    assert len((await (await history(client, "bob", conversation)).json())["messages"]) == 1
    assert queued(sqs, settings, "bob") == 0

    retries = await asyncio.gather(
        *(send(client, "alice", conversation, "stored, not announced", "k") for _ in range(10))
    )
    assert {r.status for r in retries} == {200}
    assert len({(await r.json())["messageId"] for r in retries}) == 1
    assert queued(sqs, settings, "bob") == 1

    # Announced now: later retries announce nothing more.
    assert (await send(client, "alice", conversation, "stored, not announced", "k")).status == 200
    assert queued(sqs, settings, "bob") == 1
    [message] = (await (await history(client, "bob", conversation)).json())["messages"]
    # What the retry announced names the stored message.
    stream = await open_stream(client, "bob")
    [event] = await asyncio.wait_for(next_events(stream, 1), 10)
    stream.close()
    assert data(event) == {"messageId": message["messageId"], "conversationId": conversation}


class Rendezvous:
    """Holds the first `barrier.parties` callers of a read until all of them have read, so that
    they act on what they read together; later callers pass straight through."""

    def __init__(self, read: Any, barrier: asyncio.Barrier, callers: Counter[str]) -> None:
        self._read = read
        self._barrier = barrier
        self._callers = callers

    async def __call__(self, *args: Any) -> Any:
        value = await self._read(*args)
        self._callers["read"] += 1
        if self._callers["read"] <= self._barrier.parties:
            await asyncio.wait_for(self._barrier.wait(), 10)
        return value


async def test_retries_on_two_servers_announce_an_unannounced_message_once(
    client: Client,
    second_client: Client,
    sqs: Any,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conversation = await new_conversation(client, "alice", "bob")
    router = client.app[ROUTER]
    monkeypatch.setattr(router, "publish", FlakyPublish(router.publish, failures=1))
    assert (await send(client, "alice", conversation, "half sent", "k")).status == 503
    assert queued(sqs, settings, "bob") == 0

    # Each server's first retry reads the record (stored, not announced) before either claims
    # the fan-out: only the lease's conditional write can then keep them from both announcing.
    barrier, callers = asyncio.Barrier(2), Counter[str]()
    for server in (client, second_client):
        store = server.app[CHAT]._store
        read = Rendezvous(store.get_idempotency, barrier, callers)
        monkeypatch.setattr(store, "get_idempotency", read)
    servers = (client, second_client)
    retries = await asyncio.gather(
        *(send(servers[i % 2], "alice", conversation, "half sent", "k") for i in range(6))
    )
    assert callers["read"] == 6
    assert [r.status for r in retries] == [200] * 6
    assert len({(await r.json())["messageId"] for r in retries}) == 1
    assert queued(sqs, settings, "bob") == 1
    assert queued(sqs, settings, "alice") == 1


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_held_lease_stops_retries_until_it_runs_out(
    client: Client, sqs: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that crashed mid fan-out leaves its lease held (nothing released it): retries
    announce nothing while it holds, and the first retry after it runs out announces."""
    conversation = await new_conversation(client, "alice", "bob")
    app_chat = client.app[CHAT]
    clock = Clock()
    router = SimpleNamespace(publish=FlakyPublish(client.app[ROUTER].publish, failures=1))
    chat = ChatService(app_chat._store, router, settings, clock=clock)  # type: ignore[arg-type]

    async def crashed(idempotency_id: str) -> None:
        raise ConnectionError("the server died before releasing its lease")

    monkeypatch.setattr(app_chat._store, "release_fanout", crashed)
    command = SendCommand(conversation, "crashed mid fan-out", "k")
    with pytest.raises(Unavailable):
        await chat.send("alice", command)
    # The retries reach the restarted server: a process of its own, which knows nothing of the
    # dead one's lease (a live process that failed to release takes its own lease over: see
    # tests/test_nemesis_app.py).
    restarted = ChatService(app_chat._store, router, settings, clock=clock)  # type: ignore[arg-type]
    clock.now += settings.fanout_lease_seconds / 2
    assert (await restarted.send("alice", command)).duplicate
    assert queued(sqs, settings, "bob") == 0
    clock.now += settings.fanout_lease_seconds
    assert (await restarted.send("alice", command)).duplicate
    assert queued(sqs, settings, "bob") == 1


async def test_a_lease_this_process_could_not_release_is_taken_over_by_its_retry_here(
    client: Client, sqs: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fan-out failed and DynamoDB refused the release: the lease is held by nobody. A
    retry in the same process takes it over at once and announces, rather than answer the
    message done while nobody announces it until the lease runs out."""
    conversation = await new_conversation(client, "alice", "bob")
    app_chat = client.app[CHAT]
    clock = Clock()
    router = SimpleNamespace(publish=FlakyPublish(client.app[ROUTER].publish, failures=1))
    chat = ChatService(app_chat._store, router, settings, clock=clock)  # type: ignore[arg-type]

    async def throttled(idempotency_id: str) -> None:
        raise ConnectionError("DynamoDB refused the release")

    monkeypatch.setattr(app_chat._store, "release_fanout", throttled)
    command = SendCommand(conversation, "released by nobody", "k")
    with pytest.raises(Unavailable):
        await chat.send("alice", command)
    clock.now += 0.5  # well within the lease
    assert (await chat.send("alice", command)).duplicate
    assert queued(sqs, settings, "bob") == 1
    assert (await chat.send("alice", command)).duplicate  # announced once, not again
    assert queued(sqs, settings, "bob") == 1
