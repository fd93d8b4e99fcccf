"""Per-user queue routing: names, the first-use race, queues deleted behind the app's back."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

import pytest

from semichat.aws.clients import USER_AGENT, open_clients
from semichat.server.api.app import create_app
from semichat.server.chat.store import ChatStore
from semichat.server.delivery.routing import Notification, make_router
from semichat.server.delivery.routing.naming import MAX_QUEUE_NAME, user_queue_name, validate_prefix
from semichat.server.delivery.sqs import SqsQueues
from semichat.server.metrics import SqsCounters
from semichat.settings import Settings

from .sse_helpers import data, next_events
from .test_api import new_conversation, send
from .test_stream import open_stream
from .waiting import wait_for

SQS_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")


@pytest.mark.parametrize(
    "user", ["alice", "a.b@example.com", "x" * 64, "-_.@", "A" * 64 + "", "a.b", "a_b"]
)
def test_queue_names_are_valid_sqs_names(user: str) -> None:
    name = user_queue_name("semichat-prod-", user)
    assert SQS_NAME.fullmatch(name)
    assert len(name) <= MAX_QUEUE_NAME
    assert name.startswith("semichat-prod-")


def test_queue_names_keep_users_apart() -> None:
    users = ["a.b", "a_b", "a@b", "x" * 63 + "1", "x" * 63 + "2"]
    names = {user_queue_name("p-" * 30, u) for u in users}
    assert len(names) == len(users)
    assert all(len(n) <= MAX_QUEUE_NAME for n in names)
    assert user_queue_name("p", "bob") == user_queue_name("p", "bob")


@pytest.mark.parametrize("prefix", ["has.dot", "x" * 61, "space "])
def test_bad_queue_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="queue prefix"):
        validate_prefix(prefix)


async def test_first_uses_at_once_make_one_queue_and_one_mapping(
    settings: Settings, sqs: Any, dynamodb: Any, client: Any
) -> None:
    # `client` has created the tables. Two processes' worth of routers race for one new user.
    async with open_clients(settings) as a, open_clients(settings) as b:
        routers = [
            make_router(settings, SqsQueues(c.sqs, SqsCounters()), ChatStore(c.dynamodb, p))
            for c, p in ((a, settings.table_prefix), (b, settings.table_prefix))
        ]
        urls = await asyncio.gather(*(routers[i % 2].subscribe("newbie") for i in range(10)))
    assert len({s._url for s in urls}) == 1
    queues = sqs.list_queues(QueueNamePrefix=f"{settings.queue_prefix}newbie").get("QueueUrls")
    assert queues == [urls[0]._url]
    items = dynamodb.scan(TableName=f"{settings.table_prefix}ChatUserQueue")["Items"]
    assert [(i["userId"]["S"], i["queueUrl"]["S"]) for i in items] == [("newbie", queues[0])]


async def test_queue_deleted_behind_our_back_is_recreated_on_send(
    client: Any, sqs: Any, settings: Settings
) -> None:
    conversation = await new_conversation(client, "alice", "bob")
    stream = await open_stream(client, "bob")  # creates bob's queue
    stream.close()
    [url] = sqs.list_queues(QueueNamePrefix=f"{settings.queue_prefix}bob")["QueueUrls"]
    sqs.delete_queue(QueueUrl=url)
    resp = await send(client, "alice", conversation, "still reaches bob", "k1")
    assert resp.status == 201
    sent = await resp.json()
    stream = await open_stream(client, "bob")
    [event] = await asyncio.wait_for(next_events(stream, 1), 5)
    assert data(event)["messageId"] == sent["messageId"]
    stream.close()


async def test_queue_deleted_under_an_open_stream_is_recreated(
    aiohttp_client: Any, settings: Settings, sqs: Any
) -> None:
    quick = dataclasses.replace(settings, wait_seconds=1)
    client = await aiohttp_client(create_app(quick), server_kwargs={"handler_cancellation": True})
    conversation = await new_conversation(client, "alice", "bob")
    stream = await open_stream(client, "bob")
    [url] = sqs.list_queues(QueueNamePrefix=f"{settings.queue_prefix}bob")["QueueUrls"]
    sqs.delete_queue(QueueUrl=url)
    # The stream's next poll (1 s wait) finds the queue gone and recreates it.
    await wait_for(
        lambda: sqs.list_queues(QueueNamePrefix=f"{settings.queue_prefix}bob").get("QueueUrls"),
        30,
        "bob's queue recreated",
    )
    sent = await (await send(client, "alice", conversation, "after", "k1")).json()
    [event] = await asyncio.wait_for(next_events(stream, 1), 5)
    assert data(event)["messageId"] == sent["messageId"]
    stream.close()


class _WaitingQueues:
    """SqsQueues whose polls wait until cancelled, as moto's waits on a deleted queue."""

    def __init__(self) -> None:
        self.polls = 0
        self.cancelled = 0
        self.created: list[str] = []

    async def receive(self, url: str, wait_seconds: int) -> list[dict[str, Any]]:
        self.polls += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return []

    async def create_queue(self, name: str, attributes: dict[str, str]) -> str:
        self.created.append(name)
        return f"https://sqs.example/{name}"


class _MappingStore:
    async def get_queue_url(self, user_id: str) -> str | None:
        return None

    async def put_queue_url(self, user_id: str, url: str, created_at: str) -> None:
        pass


async def test_recreating_a_users_queue_wakes_that_users_waiting_polls_only() -> None:
    queues = _WaitingQueues()
    router = make_router(Settings(), queues, _MappingStore())  # type: ignore[arg-type]
    bob, alice = await router.subscribe("bob"), await router.subscribe("alice")
    polls = [asyncio.ensure_future(s.receive()) for s in (bob, alice)]
    await wait_for(lambda: queues.polls == 2, 10, "both polls waiting")
    # A send found bob's queue gone and made it again: his poll waits on the old one.
    await router.recreate("bob")  # type: ignore[attr-defined]
    assert await asyncio.wait_for(polls[0], 10) == []
    assert queues.cancelled == 1 and not polls[1].done()
    # His next poll waits again, on the new queue; closed subscriptions are no longer woken.
    again = asyncio.ensure_future(bob.receive())
    await wait_for(lambda: queues.polls == 3, 10, "bob polls again")
    await bob.close()
    await router.recreate("bob")  # type: ignore[attr-defined]
    assert not again.done()
    for poll in (again, polls[1]):
        poll.cancel()
    await asyncio.gather(again, polls[1], return_exceptions=True)
    assert queues.cancelled == 3


def test_unknown_routing_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown routing"):
        make_router(Settings(routing="carrier-pigeon"), None, None)  # type: ignore[arg-type]


def test_notification_round_trips_as_json() -> None:
    n = Notification("m1", "c1")
    assert Notification.from_json(n.to_json()) == n


async def test_one_process_looks_a_new_user_up_once(
    settings: Settings, sqs: Any, dynamodb: Any, client: Any
) -> None:
    counters = SqsCounters()
    async with open_clients(settings) as c:
        store = ChatStore(c.dynamodb, settings.table_prefix)
        router = make_router(settings, SqsQueues(c.sqs, counters), store)
        await asyncio.gather(
            *(router.subscribe("fresh") for _ in range(5)),
            *(router.publish(["fresh"], Notification(f"m{i}", "c")) for i in range(5)),
        )
    assert counters.create_queue == 1
    assert counters.send == 5


async def test_the_server_s_aws_calls_carry_semichat_s_own_user_agent(settings: Settings) -> None:
    """`clients.USER_AGENT` replaces botocore's assembled header (rebuilt twice a call)."""
    sent: list[str] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(request.headers["User-Agent"].decode())

    async with open_clients(settings) as c:
        for client in (c.dynamodb, c.sqs):
            client.meta.events.register_last("before-send", capture)
        await c.dynamodb.list_tables()
        await c.sqs.list_queues()
    assert len(sent) == 2
    # botocore appends its session's own part ("botocore/1.43"), as it does to any override.
    assert all(ua.startswith(f"{USER_AGENT} ") and "md/" not in ua for ua in sent), sent
