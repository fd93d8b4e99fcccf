"""The stream's heartbeat as an event, and the `stall` fault at the stream writer (issue 25)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from aiohttp import ClientTimeout
from aiohttp_sse import EventSourceResponse

from semichat.server.api.app import create_app
from semichat.server.api.heartbeat import HeartbeatResponse
from semichat.settings import Settings

from .test_api import as_user

STREAM_TIMEOUT = ClientTimeout(total=None, sock_read=30)


def test_the_private_parts_of_aiohttp_sse_the_heartbeat_overrides_are_there() -> None:
    """HeartbeatResponse replaces aiohttp-sse's `_ping` and uses its private fields; a version
    that renamed them would otherwise send comment pings again, or none, without a word."""
    for name in ("_ping", "_abort_transport"):
        assert callable(getattr(EventSourceResponse, name, None)), name
    response = HeartbeatResponse(ping_interval=3.0)
    assert (response._ping_interval, response._send_timeout, response._sep) == (3.0, 30.0, "\r\n")


async def read_events(resp: Any, until: float) -> list[str]:
    """The event names of the stream until `until` seconds have passed."""
    names: list[str] = []

    async def read() -> None:
        async for line in resp.content:
            if line.startswith(b"event: "):
                names.append(line[7:].strip().decode())

    try:
        await asyncio.wait_for(read(), until)
    except TimeoutError:
        pass
    return names


async def test_a_stalled_stream_stays_open_and_silent(
    aiohttp_client: Any, settings: Settings
) -> None:
    """`stall=1`: every stream stalls 1 to 5 s after it opens. After that nothing comes, not
    even heartbeats (1 s here), and the connection stays open: only a client's watchdog can
    tell. The stall is counted."""
    stalling = dataclasses.replace(settings, faults="stall=1,seed=1")
    app = create_app(stalling)
    client = await aiohttp_client(app, server_kwargs={"handler_cancellation": True})
    resp = await client.get("/api/chat/stream", headers=as_user("stella"), timeout=STREAM_TIMEOUT)
    assert resp.status == 200
    before = await read_events(resp, 6.0)  # the stall comes within 5 s
    assert before[0] == "ready"
    after = await read_events(resp, 3.0)
    assert after == [], after
    assert not resp.content.at_eof()
    metrics = await (await client.get("/metrics")).json()
    assert metrics["faults"]["injected"] == {"stall": 1}
    resp.close()


async def test_without_the_fault_heartbeats_keep_coming(
    aiohttp_client: Any, settings: Settings
) -> None:
    """The control: the same reading sees heartbeats after the first six seconds."""
    client = await aiohttp_client(
        create_app(settings), server_kwargs={"handler_cancellation": True}
    )
    resp = await client.get("/api/chat/stream", headers=as_user("steady"), timeout=STREAM_TIMEOUT)
    await read_events(resp, 6.0)
    assert "heartbeat" in await read_events(resp, 3.0)
    resp.close()
