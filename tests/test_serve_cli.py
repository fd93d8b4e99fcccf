"""`semichat serve` as a user starts it, a real port, the contract.

Under `embedded` it starts its own embedded backend (the quickstart); under `localstack` it is
`semichat serve --backend localstack` in host mode: SQS from LocalStack on 127.0.0.1:4566 (up for
the session), DynamoDB from the embedded backend it starts itself.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import boto3
import pytest

from semichat import ports

from .conftest import Backend
from .sse_helpers import next_events


@dataclass(frozen=True)
class Served:
    base: str
    backend: Backend
    queue_prefix: str


@pytest.fixture(scope="module")
def served(backend: Backend) -> Iterator[Served]:
    held = ports.reserve()  # the port stays ours until the server binds beside it
    port = ports.port_of(held)
    queue_prefix = f"s{uuid.uuid4().hex[:6]}-"
    command = [sys.executable, "-m", "semichat", "serve", "--port", str(port), "--reuse-port"]
    command += ["--backend", backend.name, "--queue-prefix", queue_prefix]
    proc = subprocess.Popen(
        command,
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
        yield Served(base, backend, queue_prefix)
    finally:
        proc.terminate()
        proc.wait(15)
        held.close()


async def test_served_contract_round_trip(served: Served) -> None:
    timeout = aiohttp.ClientTimeout(total=30, sock_read=25)
    async with aiohttp.ClientSession(base_url=served.base, timeout=timeout) as http:
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


async def test_every_user_queue_is_where_the_backend_says(served: Served) -> None:
    """Under `localstack` the users' queues live in LocalStack's SQS, not in the moto server
    that serves DynamoDB."""
    async with aiohttp.ClientSession(base_url=served.base) as http:
        for user in ("carol", "dave"):
            async with http.get("/api/chat/stream", headers={"x-user-id": user}) as stream:
                await asyncio.wait_for(next_events(stream, 1, event="ready"), 10)
    if served.backend.name != "localstack":
        return
    sqs: Any = boto3.client(
        "sqs",
        endpoint_url=served.backend.sqs_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    urls = sqs.list_queues(QueueNamePrefix=served.queue_prefix).get("QueueUrls", [])
    readable = {url.rsplit("/", 1)[1][len(served.queue_prefix) :].rsplit("-", 1)[0] for url in urls}
    assert {"carol", "dave"} <= readable
    assert all(url.startswith("http://127.0.0.1:4566/queue/") for url in urls)
