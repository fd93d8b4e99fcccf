"""`semichat serve` as a user starts it: its own embedded backend, a real port, the contract."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import aiohttp
import pytest

from .sse_helpers import next_events


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "semichat", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(15)


async def test_served_contract_round_trip(served: str) -> None:
    timeout = aiohttp.ClientTimeout(total=30, sock_read=25)
    async with aiohttp.ClientSession(base_url=served, timeout=timeout) as http:
        for _ in range(50):
            async with http.get("/healthz") as resp:
                if resp.status == 200:
                    break
            await asyncio.sleep(0.2)
        assert resp.status == 200
        bob = {"x-user-id": "bob"}
        async with http.post(
            "/api/chat/conversations", json={"participants": ["bob"]}, headers={"x-user-id": "al"}
        ) as resp:
            conversation = (await resp.json())["conversationId"]
        async with http.get("/api/chat/stream", headers=bob) as stream:
            await asyncio.wait_for(next_events(stream, 1, event="ready"), 10)
            async with http.post(
                "/api/chat/send",
                json={"conversationId": conversation, "text": "hi", "idempotencyKey": "k"},
                headers={"x-user-id": "al"},
            ) as resp:
                assert resp.status == 201
                sent = await resp.json()
            [event] = await asyncio.wait_for(next_events(stream, 1), 5)
            assert json.loads(event.data)["messageId"] == sent["messageId"]
        async with http.get(
            "/api/chat/history", params={"conversationId": conversation}, headers=bob
        ) as resp:
            assert [m["text"] for m in (await resp.json())["messages"]] == ["hi"]
        async with http.post("/api/chat/send", data=b"{", headers=bob) as resp:
            assert resp.status == 400
            assert "error" in await resp.json()
