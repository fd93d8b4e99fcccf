"""The HTTP and stream contract under every routing strategy, and what each strategy promises.

Every strategy runs on the embedded backend (moto); `per_user_queue` and `instance` also on
LocalStack. The contract subset: a stream hears a message sent to its conversation, the sender
hears its own, a retried send is announced once, bad input is a JSON 4xx, a closed stream is
let go. Then each strategy's own promises.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import ClientTimeout

from semichat.aws.clients import open_clients
from semichat.server.api.app import create_app
from semichat.server.api.appkeys import ROUTER
from semichat.server.chat.store import ChatStore
from semichat.server.delivery.routing import make_router, router_names
from semichat.server.delivery.routing.registry import INSTANCES_KEY
from semichat.server.delivery.sqs import SqsQueues
from semichat.server.metrics import DeliveryCounters, SqsCounters
from semichat.settings import ROUTINGS, Settings

from .conftest import Backend, make_settings
from .sse_helpers import data, next_events

Client = Any
STREAM_TIMEOUT = ClientTimeout(total=None, sock_read=30)
# CI runs every strategy on moto, and these on LocalStack too.
LOCALSTACK_ROUTINGS = ("per_user_queue", "instance")
# The preprovisioned variant provisions these users ahead; the tests use no others.
USERS = ("alice", "bob", "carol", "dora")
DELIVERY_S = 10


def strategies(*routings: str) -> pytest.MarkDecorator:
    """Run the test under these strategies: on moto each, on LocalStack those of
    LOCALSTACK_ROUTINGS (the `backend` fixture, parametrised here rather than by itself)."""
    combos = [("embedded", r) for r in routings]
    combos += [("localstack", r) for r in routings if r in LOCALSTACK_ROUTINGS]
    return pytest.mark.parametrize(
        ("backend", "routing"),
        combos,
        indirect=["backend"],
        ids=[f"{r}-{b}" for b, r in combos],
        scope="session",
    )


every = strategies(*ROUTINGS)
only = strategies


def as_user(user: str) -> dict[str, str]:
    return {"x-user-id": user}


async def provision(settings: Settings, users: tuple[str, ...]) -> None:
    """`semichat provision --users`: the tables, then each user's queue."""
    from semichat.server.provisioning import provision as provision_users

    await provision_users(settings, users)


@pytest.fixture
def routed_settings(backend: Backend, routing: str) -> Settings:
    return make_settings(backend).with_overrides(routing=routing, shards=3)


@pytest.fixture
async def app_client(aiohttp_client: Any, routed_settings: Settings) -> Client:
    app = create_app(routed_settings)
    client = await aiohttp_client(app, server_kwargs={"handler_cancellation": True})
    if routed_settings.routing == "preprovisioned":
        await provision(routed_settings, USERS)
    return client


async def new_conversation(client: Client, creator: str, *others: str) -> str:
    resp = await client.post(
        "/api/chat/conversations", json={"participants": list(others)}, headers=as_user(creator)
    )
    assert resp.status == 201, await resp.text()
    return (await resp.json())["conversationId"]


async def send(client: Client, user: str, conversation: str, text: str, key: str) -> Any:
    return await client.post(
        "/api/chat/send",
        json={"conversationId": conversation, "text": text, "idempotencyKey": key},
        headers=as_user(user),
    )


async def open_stream(client: Client, user: str) -> Any:
    resp = await client.get("/api/chat/stream", headers=as_user(user), timeout=STREAM_TIMEOUT)
    assert resp.status == 200, await resp.text()
    await asyncio.wait_for(next_events(resp, 1, event="ready"), DELIVERY_S)
    return resp


async def metrics(client: Client) -> dict[str, Any]:
    return await (await client.get("/metrics")).json()


async def wait_for(
    client: Client, check: Callable[[dict[str, Any]], bool], within: float = DELIVERY_S
) -> dict[str, Any]:
    """Poll /metrics until `check` holds (returns the last reading either way)."""
    deadline = time.monotonic() + within
    while True:
        now = await metrics(client)
        if check(now) or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.05)


# -- the contract, under every strategy ----------------------------------------------------------


@every
async def test_a_stream_hears_a_message_sent_after_ready(app_client: Client) -> None:
    conversation = await new_conversation(app_client, "alice", "bob")
    stream = await open_stream(app_client, "bob")
    sent = await (await send(app_client, "alice", conversation, "hi", "k1")).json()
    [event] = await asyncio.wait_for(next_events(stream, 1), DELIVERY_S)
    assert event.id == sent["messageId"]
    assert data(event) == {"messageId": sent["messageId"], "conversationId": conversation}
    stream.close()


@every
async def test_the_sender_hears_its_own_message(app_client: Client) -> None:
    conversation = await new_conversation(app_client, "alice", "bob")
    stream = await open_stream(app_client, "alice")
    sent = await (await send(app_client, "alice", conversation, "mine", "k1")).json()
    [event] = await asyncio.wait_for(next_events(stream, 1), DELIVERY_S)
    assert data(event)["messageId"] == sent["messageId"]
    stream.close()


@every
async def test_a_retried_send_is_stored_and_announced_once(app_client: Client) -> None:
    conversation = await new_conversation(app_client, "alice", "bob")
    stream = await open_stream(app_client, "bob")
    first = await send(app_client, "alice", conversation, "once", "same-key")
    again = await send(app_client, "alice", conversation, "once", "same-key")
    assert (first.status, again.status) == (201, 200)
    later = await (await send(app_client, "alice", conversation, "next", "k2")).json()
    events = await asyncio.wait_for(next_events(stream, 2), DELIVERY_S)
    # Nothing between the two: the retry enqueued nothing.
    ids = [data(e)["messageId"] for e in events]
    assert ids == [(await first.json())["messageId"], later["messageId"]]
    stream.close()


@every
async def test_bad_input_is_a_json_4xx(app_client: Client) -> None:
    resp = await app_client.post("/api/chat/send", data=b"{", headers=as_user("alice"))
    assert resp.status == 400
    assert "error" in await resp.json()
    resp = await app_client.get("/api/chat/stream")
    assert resp.status == 401


@every
async def test_a_closed_stream_is_let_go(app_client: Client) -> None:
    stream = await open_stream(app_client, "carol")
    assert (await metrics(app_client))["sqs"]["open_streams"] == 1
    stream.close()
    now = await wait_for(app_client, lambda m: m["sqs"]["open_streams"] == 0)
    assert now["sqs"]["open_streams"] == 0


@every
async def test_metrics_name_the_routing(app_client: Client, routing: str) -> None:
    body = await metrics(app_client)
    assert body["routing"] == routing
    assert set(body["delivery"]) == set(DeliveryCounters().snapshot())


def test_every_strategy_is_offered_on_the_command_line() -> None:
    assert sorted(ROUTINGS) == router_names()


# -- fan-out in process: every tab hears every notification ---------------------------------------


@only("sharded", "instance")
async def test_every_tab_of_a_user_gets_every_notification(app_client: Client) -> None:
    conversation = await new_conversation(app_client, "alice", "bob")
    tabs = [await open_stream(app_client, "bob") for _ in range(3)]
    sent = await (await send(app_client, "alice", conversation, "to all tabs", "k1")).json()
    for tab in tabs:
        [event] = await asyncio.wait_for(next_events(tab, 1), DELIVERY_S)
        assert data(event)["messageId"] == sent["messageId"]
        tab.close()


@only("sharded", "instance")
async def test_idle_streams_share_the_process_polls(app_client: Client, routing: str) -> None:
    streams = [await open_stream(app_client, u) for u in USERS]
    now = await wait_for(app_client, lambda m: m["sqs"]["open_streams"] == len(USERS))
    # One long poll per shard (3 here) or one per instance, however many streams are open.
    assert now["sqs"]["active_polls"] == (3 if routing == "sharded" else 1)
    for s in streams:
        s.close()


@only("sharded")
async def test_sharded_drops_what_nobody_here_holds(app_client: Client) -> None:
    conversation = await new_conversation(app_client, "alice", "bob")
    assert (await send(app_client, "alice", conversation, "nobody listens", "k1")).status == 201
    now = await wait_for(app_client, lambda m: m["delivery"]["not_held"] == 2)
    assert now["delivery"]["not_held"] == 2  # alice and bob, both connected nowhere
    assert now["delivery"]["dropped"] >= 1


# -- per-user queues: what waits for a user while away -------------------------------------------


@only("per_user_queue", "preprovisioned", "fifo")
async def test_notifications_wait_in_the_users_queue(app_client: Client) -> None:
    conversation = await new_conversation(app_client, "alice", "bob")
    (await open_stream(app_client, "bob")).close()  # makes (or finds) bob's queue, leaves
    await wait_for(app_client, lambda m: m["sqs"]["open_streams"] == 0)
    sent = [
        await (await send(app_client, "alice", conversation, f"m{i}", f"k{i}")).json()
        for i in range(3)
    ]
    stream = await open_stream(app_client, "bob")
    events = await asyncio.wait_for(next_events(stream, 3), DELIVERY_S)
    assert sorted(e.id for e in events) == sorted(m["messageId"] for m in sent)
    stream.close()


@only("fifo")
async def test_fifo_keeps_a_conversation_in_order(app_client: Client, sqs: Any) -> None:
    conversation = await new_conversation(app_client, "alice", "bob")
    (await open_stream(app_client, "bob")).close()
    await wait_for(app_client, lambda m: m["sqs"]["open_streams"] == 0)
    sent = [
        (await (await send(app_client, "alice", conversation, f"m{i}", f"k{i}")).json())
        for i in range(6)
    ]
    stream = await open_stream(app_client, "bob")
    events = await asyncio.wait_for(next_events(stream, 6), DELIVERY_S)
    assert [e.id for e in events] == [m["messageId"] for m in sent]
    stream.close()


@only("fifo")
async def test_fifo_queue_drops_a_repeated_fan_out(routed_settings: Settings, sqs: Any) -> None:
    from semichat.server.delivery.routing import Notification

    await provision(routed_settings, ("bob",))  # creates bob's .fifo queue and the tables
    async with open_clients(routed_settings) as c:
        store = ChatStore(c.dynamodb, routed_settings.table_prefix)
        router = make_router(routed_settings, SqsQueues(c.sqs, SqsCounters()), store)
        for _ in range(2):
            await router.publish(["bob"], Notification("m1", "conv"))
        [url] = sqs.list_queues(QueueNamePrefix=f"{routed_settings.queue_prefix}bob")["QueueUrls"]
    assert url.endswith(".fifo")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["FifoQueue"] == "true"
    assert attrs["ApproximateNumberOfMessages"] == "1"


@only("preprovisioned")
async def test_preprovisioned_user_without_queue_gets_a_json_403(app_client: Client) -> None:
    resp = await app_client.get("/api/chat/stream", headers=as_user("stranger"))
    assert resp.status == 403
    assert "semichat provision --users stranger" in (await resp.json())["error"]


@only("preprovisioned")
async def test_preprovisioned_send_skips_and_counts_a_recipient_without_queue(
    app_client: Client,
) -> None:
    conversation = await new_conversation(app_client, "alice", "stranger")
    resp = await send(app_client, "alice", conversation, "hello", "k1")
    assert resp.status == 201
    history = await app_client.get(
        "/api/chat/history", params={"conversationId": conversation}, headers=as_user("stranger")
    )
    assert [m["text"] for m in (await history.json())["messages"]] == ["hello"]
    body = await metrics(app_client)
    assert body["delivery"]["skipped_unprovisioned"] == 1
    assert body["sqs"]["create_queue"] == 0


# -- instance: the registry, its cleanup, several processes -------------------------------------


def registry_items(dynamodb: Any, settings: Settings, user: str) -> list[dict[str, Any]]:
    return dynamodb.query(
        TableName=f"{settings.table_prefix}Connections",
        KeyConditionExpression="userId = :u",
        ExpressionAttributeValues={":u": {"S": user}},
        ConsistentRead=True,
    )["Items"]


@only("instance")
async def test_instance_registers_streams_and_forgets_them(
    app_client: Client, dynamodb: Any, routed_settings: Settings
) -> None:
    tabs = [await open_stream(app_client, "dora") for _ in range(2)]
    assert len(registry_items(dynamodb, routed_settings, "dora")) == 1
    tabs[0].close()
    await wait_for(app_client, lambda m: m["sqs"]["open_streams"] == 1)
    assert len(registry_items(dynamodb, routed_settings, "dora")) == 1  # a tab is still open
    tabs[1].close()
    await wait_for(app_client, lambda m: m["delivery"]["registry_deletes"] >= 1)
    assert registry_items(dynamodb, routed_settings, "dora") == []


@only("instance")
async def test_instance_streams_opening_together_share_registry_writes(
    app_client: Client, dynamodb: Any, routed_settings: Settings
) -> None:
    users = [f"storm{i}" for i in range(30)]
    before = (await metrics(app_client))["delivery"]["registry_writes"]
    streams = await asyncio.gather(*(open_stream(app_client, u) for u in users))
    writes = (await metrics(app_client))["delivery"]["registry_writes"] - before
    # Each stream was registered before its `ready`, in fewer requests than streams.
    assert all(len(registry_items(dynamodb, routed_settings, u)) == 1 for u in users)
    assert writes < len(users)
    for s in streams:
        s.close()


@only("instance")
async def test_instance_queues_nothing_for_a_user_connected_nowhere(app_client: Client) -> None:
    conversation = await new_conversation(app_client, "alice", "bob")
    assert (await send(app_client, "alice", conversation, "nobody", "k1")).status == 201
    body = await metrics(app_client)
    assert body["delivery"]["not_connected"] == 2
    assert body["sqs"]["send"] == 0


@only("instance")
async def test_two_instances_reach_each_others_streams_and_clean_up(
    aiohttp_client: Any, routed_settings: Settings, sqs: Any, dynamodb: Any
) -> None:
    a = await aiohttp_client(create_app(routed_settings))
    b = await aiohttp_client(create_app(routed_settings))
    conversation = await new_conversation(a, "alice", "bob")
    stream_b = await open_stream(b, "bob")
    stream_a = await open_stream(a, "bob")
    sent = await (await send(a, "alice", conversation, "across", "k1")).json()
    for stream in (stream_a, stream_b):
        [event] = await asyncio.wait_for(next_events(stream, 1), DELIVERY_S)
        assert data(event)["messageId"] == sent["messageId"]
        stream.close()
    assert len(registry_items(dynamodb, routed_settings, INSTANCES_KEY)) == 2
    prefix = f"{routed_settings.queue_prefix}instance-"
    assert len(sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])) == 2
    await a.close()
    await b.close()
    assert sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", []) == []
    assert registry_items(dynamodb, routed_settings, INSTANCES_KEY) == []


@only("instance")
async def test_a_crashed_instance_is_swept_and_skipped(
    app_client: Client, routed_settings: Settings, sqs: Any, dynamodb: Any
) -> None:
    table = f"{routed_settings.table_prefix}Connections"
    dead = sqs.create_queue(QueueName=f"{routed_settings.queue_prefix}instance-dead")["QueueUrl"]
    gone = f"{dead}-already-deleted"
    past = str(int(time.time()) - 10)
    future = str(int(time.time()) + 600)
    for user, instance, url, deadline, expires in (
        (INSTANCES_KEY, "dead", dead, "aliveUntil", past),
        # An entry not yet expired whose queue is already gone.
        ("bob", "gone", gone, "expiresAt", future),
    ):
        dynamodb.put_item(
            TableName=table,
            Item={
                "userId": {"S": user},
                "instanceId": {"S": instance},
                "queueUrl": {"S": url},
                deadline: {"N": expires},
            },
        )
    conversation = await new_conversation(app_client, "alice", "bob")
    assert (await send(app_client, "alice", conversation, "to a ghost", "k1")).status == 201
    body = await metrics(app_client)
    assert body["delivery"]["stale_instances"] == 1, body
    router = app_client.app[ROUTER]
    assert await router.sweep() == 1  # type: ignore[attr-defined]
    assert dead not in sqs.list_queues(QueueNamePrefix=routed_settings.queue_prefix).get(
        "QueueUrls", []
    )


# -- what each strategy's IAM policy must grant ---------------------------------------------------

_ACTION_OF_COUNTER = {
    "send": "sqs:SendMessage",
    "receive": "sqs:ReceiveMessage",
    "delete": "sqs:DeleteMessage",
    "change_visibility": "sqs:ChangeMessageVisibility",
    "create_queue": "sqs:CreateQueue",
    "get_queue_url": "sqs:GetQueueUrl",
    "delete_queue": "sqs:DeleteQueue",
}


@every
async def test_the_strategys_policy_grants_every_sqs_call_it_made(
    aiohttp_client: Any, routed_settings: Settings, routing: str
) -> None:
    from semichat.aws.iam import server_policy
    from semichat.server.api.appkeys import COUNTERS

    app = create_app(routed_settings)
    client = await aiohttp_client(app, server_kwargs={"handler_cancellation": True})
    if routing == "preprovisioned":
        await provision(routed_settings, USERS)
    conversation = await new_conversation(client, "alice", "bob")
    stream = await open_stream(client, "bob")
    await send(client, "alice", conversation, "hi", "k1")
    await asyncio.wait_for(next_events(stream, 1), DELIVERY_S)
    stream.close()
    await client.close()  # shutdown: the instance deletes its queue
    made = {
        _ACTION_OF_COUNTER[k]
        for k, v in app[COUNTERS].snapshot().items()
        if k in _ACTION_OF_COUNTER and v
    }
    policy = server_policy(
        region="us-east-1", account="1", table_prefix="t-", queue_prefix="q-", routing=routing
    )
    granted = {a for st in policy["Statement"] for a in st["Action"]}
    assert made <= granted
    assert ("sqs:CreateQueue" in granted) == (routing != "preprovisioned")
