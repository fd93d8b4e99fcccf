"""Limits: streams per user (429), streams per process (503), sends per user (429, token bucket),
each with a JSON error and a count in /metrics, in demo and token mode alike."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import ClientTimeout

from semichat.server.api.app import create_app
from semichat.server.errors import TooManyRequests
from semichat.server.metrics import LimitCounters
from semichat.server.trust.limits import SendLimiter, TokenBucket
from semichat.settings import Settings

from .auth_helpers import credentials, token_settings
from .sse_helpers import next_events

Client = Any
STREAM_TIMEOUT = ClientTimeout(total=None, sock_read=30)
MODES = ["demo", "token"]


async def make_client(aiohttp_client: Any, settings: Settings, mode: str) -> Client:
    if mode == "token":
        settings = token_settings(settings)
    app = create_app(settings)
    return await aiohttp_client(app, server_kwargs={"handler_cancellation": True})


async def limits(client: Client) -> dict[str, int]:
    return (await (await client.get("/metrics")).json())["limits"]


async def open_stream(client: Client, headers: dict[str, str]) -> Any:
    resp = await client.get("/api/chat/stream", headers=headers, timeout=STREAM_TIMEOUT)
    assert resp.status == 200, await resp.text()
    await asyncio.wait_for(next_events(resp, 1, event="ready"), 10)
    return resp


async def wait_for_open_streams(client: Client, count: int) -> None:
    async with asyncio.timeout(10):
        while True:
            if (await limits(client))["open_streams"] == count:
                return
            await asyncio.sleep(0.05)


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, capacity=3.0, tokens=3.0, updated=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # one token takes 1/rate seconds
    assert bucket.take(0.25) == pytest.approx(0.25)
    assert bucket.take(0.5) == 0.0
    assert bucket.take(100.0) == 0.0 and bucket.tokens == pytest.approx(2.0)  # capped at capacity


def test_send_limiter_keeps_users_apart() -> None:
    now = [0.0]
    counters = LimitCounters()
    limiter = SendLimiter(
        Settings(sends_per_second=1.0, send_burst=2), counters, clock=lambda: now[0]
    )
    limiter.check("alice")
    limiter.check("alice")
    with pytest.raises(TooManyRequests) as refused:
        limiter.check("alice")
    assert refused.value.retry_after == 1
    limiter.check("bob")  # a separate bucket
    now[0] = 1.0
    limiter.check("alice")
    assert counters.sends_rejected == 1


@pytest.mark.parametrize("mode", MODES)
async def test_ninth_stream_of_a_user_gets_429(
    aiohttp_client: Any, settings: Settings, mode: str
) -> None:
    assert settings.max_streams_per_user == 8  # the default under test
    client = await make_client(aiohttp_client, settings, mode)
    alice, bob = credentials(mode, "alice"), credentials(mode, "bob")
    async with AsyncExitStack() as streams:
        first = [await open_stream(client, alice) for _ in range(8)]
        for resp in first:
            streams.callback(resp.close)
        ninth = await client.get("/api/chat/stream", headers=alice, timeout=STREAM_TIMEOUT)
        assert ninth.status == 429
        assert "error" in await ninth.json()
        assert ninth.headers["Retry-After"].isdigit()
        streams.callback((await open_stream(client, bob)).close)  # others are unaffected
        assert (await limits(client))["streams_rejected_user"] == 1
        first[0].close()
        await wait_for_open_streams(client, 8)
        streams.callback((await open_stream(client, alice)).close)  # a freed slot is reusable


async def test_process_sheds_streams_with_503(aiohttp_client: Any, settings: Settings) -> None:
    client = await make_client(aiohttp_client, replace(settings, max_streams=2), "demo")
    a = await open_stream(client, credentials("demo", "a"))
    b = await open_stream(client, credentials("demo", "b"))
    refused = await client.get("/api/chat/stream", headers=credentials("demo", "c"))
    assert refused.status == 503
    assert int(refused.headers["Retry-After"]) > 0
    assert "error" in await refused.json()
    assert (await limits(client))["streams_rejected_process"] == 1
    a.close()
    b.close()
    await wait_for_open_streams(client, 0)


@pytest.mark.parametrize("mode", MODES)
async def test_send_burst_gets_429_with_retry_after_and_others_are_unaffected(
    aiohttp_client: Any, settings: Settings, mode: str
) -> None:
    limited = replace(settings, sends_per_second=1.0, send_burst=3)
    client = await make_client(aiohttp_client, limited, mode)

    async def send(user: str, key: str) -> Any:
        body = {"conversationId": f"support:{user}", "text": "hi", "idempotencyKey": key}
        return await client.post("/api/chat/send", json=body, headers=credentials(mode, user))

    burst = await asyncio.gather(*(send("alice", f"a{i}") for i in range(10)))
    statuses = sorted(r.status for r in burst)
    refused = [r for r in burst if r.status == 429]
    # The whole burst arrives within far less than a second: the bucket's 3, perhaps one more.
    assert 3 <= statuses.count(201) <= 4
    assert len(refused) == 10 - statuses.count(201)
    for resp in refused:
        assert int(resp.headers["Retry-After"]) >= 1
        assert "too many sends" in (await resp.json())["error"]
    assert (await send("bob", "b1")).status == 201
    assert (await limits(client))["sends_rejected"] == len(refused)
