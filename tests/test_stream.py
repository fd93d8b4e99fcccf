"""The SSE stream against a real backend: delivery, acknowledgement, heartbeats, disconnects."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

import pytest
from aiohttp import ClientTimeout

from semichat.server.app import create_app
from semichat.settings import Settings

from .conftest import Backend, make_settings
from .sse_helpers import data, next_events
from .test_api import as_user, history, new_conversation, send

Client = Any
STREAM_TIMEOUT = ClientTimeout(total=None, sock_read=30)


async def open_stream(client: Client, user: str) -> Any:
    resp = await client.get("/api/chat/stream", headers=as_user(user), timeout=STREAM_TIMEOUT)
    assert resp.status == 200
    assert resp.content_type == "text/event-stream"
    # The `ready` event says the subscription (and the user's queue) exists.
    await asyncio.wait_for(next_events(resp, 1, event="ready"), 10)
    return resp


async def metrics(client: Client) -> dict[str, int]:
    return (await (await client.get("/metrics")).json())["sqs"]


async def test_second_client_receives_the_message(client: Client) -> None:
    await history(client, "bob", "support-demo")  # bob joins the demo conversation
    stream = await open_stream(client, "bob")
    sent = await (await send(client, "alice", "support-demo", "hi bob", "k1")).json()
    [event] = await asyncio.wait_for(next_events(stream, 1), 5)
    assert event.event == "message"
    assert event.id == sent["messageId"]
    assert data(event) == {"messageId": sent["messageId"], "conversationId": "support-demo"}
    stream.close()


async def test_sender_hears_its_own_message(client: Client) -> None:
    conversation = await new_conversation(client, "alice", "bob")
    stream = await open_stream(client, "alice")
    sent = await (await send(client, "alice", conversation, "for my other tabs", "k1")).json()
    [event] = await asyncio.wait_for(next_events(stream, 1), 5)
    assert data(event)["messageId"] == sent["messageId"]
    stream.close()


async def test_notifications_queue_while_offline_and_are_acknowledged(
    client: Client, sqs: Any, settings: Settings
) -> None:
    conversation = await new_conversation(client, "alice", "bob")
    ids = []
    for i in range(3):
        ids.append(await (await send(client, "alice", conversation, f"m{i}", f"k{i}")).json())
    stream = await open_stream(client, "bob")
    events = await asyncio.wait_for(next_events(stream, 3), 5)
    assert sorted(e.id for e in events) == sorted(m["messageId"] for m in ids)
    await asyncio.sleep(0.3)
    stream.close()
    queue_url = sqs.list_queues(QueueNamePrefix=f"{settings.queue_prefix}bob")["QueueUrls"][0]
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    # Deleted after writing, not merely received: nothing waits and nothing is in flight.
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert (await metrics(client))["delete"] == 3


async def test_heartbeat_comments_keep_the_stream_alive(client: Client) -> None:
    resp = await client.get("/api/chat/stream", headers=as_user("carol"), timeout=STREAM_TIMEOUT)
    started = time.monotonic()
    async for line in resp.content:
        if line.startswith(b": ping"):
            break
    # heartbeat_seconds is 1 in the test settings.
    assert time.monotonic() - started < 3
    resp.close()


async def _wait_for_metrics(client: Client, want: dict[str, int], within: float) -> dict:
    deadline = time.monotonic() + within
    while True:
        now = await metrics(client)
        if all(now[k] == v for k, v in want.items()) or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("release", [True, False], ids=["release-orphans", "cancel-polls"])
async def test_client_disconnect_ends_the_stream_and_its_poll(
    aiohttp_client: Any, settings: Settings, caplog: pytest.LogCaptureFixture, release: bool
) -> None:
    caplog.set_level(logging.INFO, logger="semichat.events")
    quick = dataclasses.replace(settings, wait_seconds=3, release_orphaned_polls=release)
    client = await aiohttp_client(create_app(quick), server_kwargs={"handler_cancellation": True})
    stream = await open_stream(client, "dora")
    await asyncio.sleep(0.2)
    before = await metrics(client)
    assert (before["active_polls"], before["open_streams"]) == (1, 1)
    stream.close()
    # The stream ends at once either way; a cancelled poll ends with it, a released one
    # within its wait.
    now = await _wait_for_metrics(client, {"open_streams": 0}, within=1.0)
    assert now["open_streams"] == 0
    assert any(r.getMessage() == "stream disconnected" for r in caplog.records)
    if not release:
        assert now["active_polls"] == 0
    now = await _wait_for_metrics(client, {"active_polls": 0}, within=quick.wait_seconds + 2)
    assert now["active_polls"] == 0


async def test_notification_after_a_closed_stream_reaches_the_next_one_promptly(
    client: Client,
) -> None:
    """A page reload or a tab takeover: the old stream's poll is still waiting at the backend
    when the next message comes. It must reach the new stream in seconds, not after the
    visibility timeout (30 s), which is what cancelling that poll cost on moto."""
    conversation = await new_conversation(client, "alice", "bob")
    old = await open_stream(client, "bob")
    await asyncio.sleep(0.3)
    old.close()
    new = await open_stream(client, "bob")
    await asyncio.sleep(0.3)
    sent_at = time.monotonic()
    sent = await (await send(client, "alice", conversation, "after reload", "k1")).json()
    [event] = await asyncio.wait_for(next_events(new, 1), 10)
    assert data(event)["messageId"] == sent["messageId"]
    assert time.monotonic() - sent_at < 3.0
    new.close()


async def _stream_latencies(client: Client, users: list[str]) -> list[float]:
    conversation = await new_conversation(client, users[0], *users[1:])
    streams = await asyncio.gather(*(open_stream(client, u) for u in users))
    await asyncio.sleep(0.5)  # every stream is now inside its long poll
    received: list[float] = []

    async def listen(stream: Any) -> None:
        await next_events(stream, 1)
        received.append(time.monotonic())

    listeners = [asyncio.create_task(listen(s)) for s in streams]
    sent_at = time.monotonic()
    assert (await send(client, users[0], conversation, "to all fifty", "k")).status == 201
    await asyncio.wait(listeners, timeout=10)
    for s in streams:
        s.close()
    return [t - sent_at for t in received]


async def test_fifty_open_streams_each_get_the_notification_within_a_second(
    aiohttp_client: Any, quiet_backend: Backend
) -> None:
    app = create_app(make_settings(quiet_backend))
    client = await aiohttp_client(app, server_kwargs={"handler_cancellation": True})
    users = [f"u{i}" for i in range(50)]
    latencies = await _stream_latencies(client, users)
    assert len(latencies) == 50
    assert max(latencies) < 1.0, sorted(latencies)[-5:]


async def test_a_default_sized_pool_would_make_streams_wait(
    aiohttp_client: Any, settings: Settings
) -> None:
    """The control for the test above: aiobotocore's default pool of 10 connections.

    Twenty streams long-poll on ten connections, so the notifications (and the sends that carry
    them) queue until polls time out: the test above would catch a pool sized like this.
    """
    small = dataclasses.replace(settings, max_pool_connections=10, wait_seconds=3)
    client = await aiohttp_client(create_app(small), server_kwargs={"handler_cancellation": True})
    latencies = await _stream_latencies(client, [f"p{i}" for i in range(20)])
    assert len(latencies) == 20
    assert max(latencies) > 1.0, sorted(latencies)
