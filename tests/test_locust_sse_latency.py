"""The load generator reads SSE events as they arrive: no client-side buffering delay.

Locust's own `iter_lines` held events back until 1,024 bytes had come (shared notes); a stream
of small, sparse events is exactly what a chat stream is. A fake server writes three events
0.5 s apart and then nothing. A client that held an event back until more bytes came would
record it with the next one, at least 0.5 s late, or never: each must be recorded well within
half that gap of being written (the measured delays are printed).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp_sse import sse_response

from semichat.harness.loadgen.config import LoadConfig
from semichat.harness.scenarios import scenario_file

pytestmark = pytest.mark.slow

EVENTS = 3
GAP_S = 0.5


def fake_chat_server(written: dict[str, float]) -> web.Application:
    async def conversations(request: web.Request) -> web.Response:
        return web.json_response({"conversationId": "c1", "participants": []}, status=201)

    async def history(request: web.Request) -> web.Response:
        return web.json_response({"messages": [], "nextCursor": None})

    async def send(request: web.Request) -> web.Response:
        return web.json_response({"messageId": "sent-1"}, status=201)

    async def stream(request: web.Request) -> web.StreamResponse:
        async with sse_response(request, ping_interval=60) as resp:
            await resp.send(json.dumps({"streamId": "s"}), event="ready")
            for i in range(EVENTS):
                await asyncio.sleep(GAP_S)
                message_id = f"m{i}"
                written[message_id] = time.time()
                payload = json.dumps({"messageId": message_id, "conversationId": "c1"})
                await resp.send(payload, id=message_id, event="message")
            await asyncio.sleep(30)  # then silence: a buffering client would sit on the events
        return resp

    app = web.Application()
    app.router.add_post("/api/chat/conversations", conversations)
    app.router.add_get("/api/chat/history", history)
    app.router.add_post("/api/chat/send", send)
    app.router.add_get("/api/chat/stream", stream)
    return app


async def test_events_reach_the_recorder_before_the_next_one_is_written(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    written: dict[str, float] = {}
    server = await aiohttp_server(fake_chat_server(written))
    config = LoadConfig(run_dir=str(tmp_path), conversation_size=1, send_interval=100.0)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "locust", "-f", str(scenario_file("chat")), "--headless",
        "-u", "1", "-r", "1", "-t", "4s", "--stop-timeout", "2", "--only-summary",
        "--host", f"http://127.0.0.1:{server.port}",
        env={**config.to_env(), "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    events = [
        json.loads(line)
        for path in (tmp_path / "events").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    received = {e["messageId"]: e["t"] for e in events if e["type"] == "notification"}
    assert set(received) == set(written) == {f"m{i}" for i in range(EVENTS)}, stderr.decode()
    delays_ms = {m: (received[m] - written[m]) * 1000 for m in written}
    print(f"written-to-recorded delays: { {m: round(d, 1) for m, d in delays_ms.items()} } ms")
    assert max(delays_ms.values()) < GAP_S * 1000 / 2, delays_ms
