"""The SSE stream against a real backend: delivery, acknowledgement, heartbeats, disconnects."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import time
from typing import Any

import pytest
from aiohttp import ClientTimeout

from semichat.server.api.app import create_app
from semichat.settings import Settings

from .conftest import Backend, make_settings
from .sse_helpers import data, next_events
from .test_api import as_user, history, new_conversation, send
from .waiting import wait_for

Client = Any
STREAM_TIMEOUT = ClientTimeout(total=None, sock_read=30)
VISIBILITY_TIMEOUT_S = 30


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
    # Each notification is deleted after it is written: wait until the backend has answered
    # all three deletes (the effect), not for a clock.
    await metrics_reach(client, {"messages_deleted": 3}, within=10)
    stream.close()
    queue_url = sqs.list_queues(QueueNamePrefix=f"{settings.queue_prefix}bob")["QueueUrls"][0]
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    # Deleted after writing, not merely received: nothing waits and nothing is in flight.
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


async def test_heartbeat_events_keep_the_stream_alive_at_the_interval_ready_states(
    client: Client,
) -> None:
    """Heartbeats are events a browser's EventSource can see (not comments), counted on the
    wire at the interval the `ready` event states, and the stream still open after them."""
    resp = await client.get("/api/chat/stream", headers=as_user("carol"), timeout=STREAM_TIMEOUT)
    pings: list[float] = []
    stated: list[float] = []

    async def read_pings(count: int) -> None:
        async for line in resp.content:
            if line.startswith(b"data: {") and b"heartbeatSeconds" in line:
                stated.append(json.loads(line[6:])["heartbeatSeconds"])
            if line.startswith(b"event: heartbeat"):
                pings.append(time.monotonic())
                if len(pings) == count:
                    return

    # Generous: three 1 s heartbeats; the measured gaps are printed and bounded below.
    await asyncio.wait_for(read_pings(3), 30)
    assert len(pings) == 3, "the stream ended before three pings"
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(pings)]
    print(f"heartbeat gaps: {gaps} s")
    assert all(gap >= 0.5 for gap in gaps), gaps  # pings, not a burst at close
    assert stated == [1.0]  # the fixture's heartbeat_seconds
    assert not resp.content.at_eof()
    assert (await metrics(client))["open_streams"] == 1
    resp.close()


async def metrics_reach(client: Client, want: dict[str, int], within: float) -> dict[str, int]:
    """The SQS metrics once each counter in `want` has its value."""

    async def reached() -> dict[str, int] | None:
        now = await metrics(client)
        return now if all(now[k] == v for k, v in want.items()) else None

    return await wait_for(reached, within, f"metrics {want}")


@pytest.mark.parametrize("release", [True, False], ids=["release-orphans", "cancel-polls"])
async def test_client_disconnect_ends_the_stream_and_its_poll(
    aiohttp_client: Any, settings: Settings, caplog: pytest.LogCaptureFixture, release: bool
) -> None:
    caplog.set_level(logging.INFO, logger="semichat.events")
    quick = dataclasses.replace(settings, wait_seconds=3, release_orphaned_polls=release)
    client = await aiohttp_client(create_app(quick), server_kwargs={"handler_cancellation": True})
    stream = await open_stream(client, "dora")
    await metrics_reach(client, {"active_polls": 1, "open_streams": 1}, within=10)
    stream.close()
    # The stream ends at once either way; a cancelled poll ends with it, a released one
    # within its wait (3 s). The bounds are generous; what was measured is printed.
    closed_at = time.monotonic()
    now = await metrics_reach(client, {"open_streams": 0}, within=10)
    ended_s = time.monotonic() - closed_at
    print(f"stream ended {ended_s:.2f} s after the client closed it")
    # A stream that waited for its poll to run out would take the whole wait.
    assert ended_s < quick.wait_seconds
    assert any(r.getMessage() == "stream disconnected" for r in caplog.records)
    if not release:
        assert now["active_polls"] == 0
    now = await metrics_reach(client, {"active_polls": 0}, within=quick.wait_seconds + 10)
    print(f"poll ended {time.monotonic() - closed_at:.2f} s after the client closed it")


async def test_notification_after_a_closed_stream_reaches_the_next_one_promptly(
    client: Client,
) -> None:
    """A page reload or a tab takeover: the old stream's poll is still waiting at the backend
    when the next message comes. It must reach the new stream in seconds, not after the
    visibility timeout (30 s), which is what cancelling that poll cost on moto."""
    conversation = await new_conversation(client, "alice", "bob")
    old = await open_stream(client, "bob")
    await metrics_reach(client, {"active_polls": 1}, within=10)  # the old poll is waiting
    old.close()
    await metrics_reach(client, {"open_streams": 0}, within=10)
    new = await open_stream(client, "bob")

    async def new_poll_waiting() -> bool:
        now = await metrics(client)
        return now["open_streams"] == 1 and now["active_polls"] >= 1

    await wait_for(new_poll_waiting, 10, "the new stream's poll")
    sent_at = time.monotonic()
    sent = await (await send(client, "alice", conversation, "after reload", "k1")).json()
    [event] = await asyncio.wait_for(next_events(new, 1), 30)
    assert data(event)["messageId"] == sent["messageId"]
    took_s = time.monotonic() - sent_at
    print(f"notification reached the new stream in {took_s:.2f} s")
    # Generous, and still well clear of the failure: the 30 s visibility timeout.
    assert took_s < VISIBILITY_TIMEOUT_S / 2
    new.close()


async def _stream_latencies(client: Client, users: list[str]) -> list[float]:
    conversation = await new_conversation(client, users[0], *users[1:])
    streams = await asyncio.gather(*(open_stream(client, u) for u in users))
    # Every stream inside its long poll (a poll waiting for a pooled connection counts too).
    await metrics_reach(client, {"active_polls": len(users)}, within=30)
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


def without_waiting_for_a_poll(settings: Settings) -> float:
    """The bound between a notification delivered at once and one that waited for a long poll
    to run out (what a too-small connection pool causes): a quarter of the poll's wait."""
    return settings.wait_seconds / 4


async def test_fifty_open_streams_each_get_the_notification_without_waiting_for_a_poll(
    aiohttp_client: Any, quiet_backend: Backend
) -> None:
    settings = make_settings(quiet_backend)
    client = await aiohttp_client(
        create_app(settings), server_kwargs={"handler_cancellation": True}
    )
    users = [f"u{i}" for i in range(50)]
    latencies = await _stream_latencies(client, users)
    assert len(latencies) == 50
    print(f"50 streams: slowest notifications {sorted(round(x, 3) for x in latencies)[-5:]} s")
    assert max(latencies) < without_waiting_for_a_poll(settings), sorted(latencies)[-5:]


async def test_a_default_sized_pool_would_make_streams_wait(
    aiohttp_client: Any, settings: Settings
) -> None:
    """The control for the test above: aiobotocore's default pool of 10 connections.

    Twenty streams long-poll on ten connections, so the notifications (and the sends that carry
    them) queue until polls time out: the test above would catch a pool sized like this.
    """
    # No stream cap: the cap from a pool of 10 would refuse most of the twenty streams.
    small = dataclasses.replace(settings, max_pool_connections=10, wait_seconds=3, max_streams=0)
    client = await aiohttp_client(create_app(small), server_kwargs={"handler_cancellation": True})
    latencies = await _stream_latencies(client, [f"p{i}" for i in range(20)])
    assert len(latencies) == 20
    print(f"20 streams, pool of 10: slowest {sorted(round(x, 3) for x in latencies)[-5:]} s")
    assert max(latencies) > without_waiting_for_a_poll(small), sorted(latencies)
