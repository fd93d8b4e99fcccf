"""One client process of `bench_streams`: holds its share of the streams and chats among them.

The parent starts several of these (`--clients K`), so that no single client process (its event
loop, its file descriptors) caps what the server is shown. Each worker talks to the parent over a
pipe, in steps: it opens its streams and reports `connected`; on `chat` it sends messages in
its own small conversations (created before the streams opened) and reports what it saw, then
closes everything on `stop`. Times are wall-clock (`time.time()`), comparable across processes
on one machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector

# Opening streams all at once would make the server's accept queue and the backend's first-use
# work (a queue or a registry write per user) the only thing measured; this many at a time.
CONNECT_CONCURRENCY = 200
RETRIES = 5


@dataclass
class WorkerPlan:
    target: str
    users: list[str]
    conversations: list[list[str]]
    messages: int
    interval_s: float
    wait_s: float


@dataclass
class StreamRecord:
    ready_at: float | None = None
    pings: list[float] = field(default_factory=list)
    failed: str | None = None
    retries: int = 0


@dataclass
class WorkerState:
    streams: dict[str, StreamRecord] = field(default_factory=dict)
    # messageId -> user -> time the notification arrived.
    received: dict[str, dict[str, float]] = field(default_factory=dict)


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft limit of open files to the hard one; returns (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


async def hold_stream(
    http: ClientSession, user: str, state: WorkerState, ready: asyncio.Semaphore
) -> None:
    """Open the user's stream and read it until cancelled, recording pings and messages; a
    503 or 429 is retried after its `Retry-After`, as the widget does (`RETRIES` times)."""
    record = state.streams.setdefault(user, StreamRecord())
    try:
        for _ in range(RETRIES + 1):
            async with http.get(
                "/api/chat/stream", headers={"x-user-id": user, "Accept-Encoding": "identity"}
            ) as resp:
                if resp.status in (429, 503):
                    record.retries += 1
                    await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                    continue
                if resp.status != 200:
                    record.failed = f"HTTP {resp.status}"
                    return
                await read_stream(resp, user, record, state, ready)
                record.failed = "stream ended"
                return
        record.failed = "HTTP 503 after retries"
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a refused or dropped connection is a finding, not a crash
        record.failed = type(exc).__name__
    finally:
        if record.ready_at is None:
            ready.release()


async def read_stream(
    resp: Any, user: str, record: StreamRecord, state: WorkerState, ready: asyncio.Semaphore
) -> None:
    async for raw in resp.content:
        now = time.time()
        if raw.startswith((b":", b"event: heartbeat")):
            record.pings.append(now)
        elif raw.startswith(b"event: ready") and record.ready_at is None:
            record.ready_at = now
            ready.release()
        elif raw.startswith(b"id: "):
            message_id = raw[4:].strip().decode()
            state.received.setdefault(message_id, {}).setdefault(user, now)


async def create_conversations(http: ClientSession, plan: WorkerPlan) -> list[str]:
    ids = []
    for members in plan.conversations:
        async with http.post(
            "/api/chat/conversations",
            json={"participants": members[1:]},
            headers={"x-user-id": members[0]},
        ) as resp:
            ids.append((await resp.json())["conversationId"])
    return ids


async def chat(
    http: ClientSession, plan: WorkerPlan, conversation_ids: list[str], answered: list[float]
) -> list[tuple[str, float, list[str]]]:
    """Each conversation sends `messages` messages, `interval_s` apart, senders in turn;
    returns (messageId, sent at, recipients) for each send that was stored; `answered` gets
    each stored send's response time."""
    sent: list[tuple[str, float, list[str]]] = []

    async def one(members: list[str], conversation: str, i: int) -> None:
        await asyncio.sleep(i * plan.interval_s)
        body = {"conversationId": conversation, "text": f"m{i}", "idempotencyKey": uuid.uuid4().hex}
        t0 = time.time()
        async with http.post(
            "/api/chat/send", json=body, headers={"x-user-id": members[i % len(members)]}
        ) as resp:
            if resp.status in (200, 201):
                sent.append(((await resp.json())["messageId"], t0, members))
                answered.append(time.time() - t0)

    await asyncio.gather(
        *(
            one(members, conversation, i)
            for members, conversation in zip(plan.conversations, conversation_ids, strict=True)
            for i in range(plan.messages)
        )
    )
    return sent


async def wait_for_receipts(
    state: WorkerState, sent: list[tuple[str, float, list[str]]], wait_s: float
) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if all(len(state.received.get(m, {})) >= len(members) for m, _, members in sent):
            return
        await asyncio.sleep(0.05)


def summarise(
    state: WorkerState,
    sent: list[tuple[str, float, list[str]]],
    attempted: int,
    answered: list[float] | None = None,
) -> dict[str, Any]:
    latencies, missing = [], 0
    for message_id, t0, members in sent:
        got = state.received.get(message_id, {})
        for user in members:
            if user in got:
                latencies.append(got[user] - t0)
            else:
                missing += 1
    ready = [r.ready_at for r in state.streams.values() if r.ready_at is not None]
    return {
        "ready": len(ready),
        "last_ready_at": max(ready, default=None),
        "failed": [r.failed for r in state.streams.values() if r.failed and r.ready_at is None],
        "dropped_after_ready": sum(
            1 for r in state.streams.values() if r.failed and r.ready_at is not None
        ),
        "retries": sum(r.retries for r in state.streams.values()),
        "pings": {u: [r.ready_at, *r.pings] for u, r in state.streams.items() if r.ready_at},
        "latencies": latencies,
        "missing": missing,
        "sends_attempted": attempted,
        "sends_stored": len(sent),
        "send_times": answered or [],
    }


async def run_worker(plan: WorkerPlan, conn: Connection) -> None:
    state = WorkerState()
    timeout = ClientTimeout(total=None, sock_read=None, sock_connect=30)
    connector = TCPConnector(limit=0, force_close=False)
    async with ClientSession(plan.target, timeout=timeout, connector=connector) as http:
        conversation_ids = await create_conversations(http, plan)
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        tasks = []
        for user in plan.users:
            await gate.acquire()  # released by the stream once ready (or failed)
            tasks.append(asyncio.create_task(hold_stream(http, user, state, gate)))
        for _ in range(CONNECT_CONCURRENCY):
            await gate.acquire()
        conn.send(("connected", summarise(state, [], 0)))
        loop = asyncio.get_running_loop()
        command = await loop.run_in_executor(None, conn.recv)
        sent: list[tuple[str, float, list[str]]] = []
        if command == "chat":
            answered: list[float] = []
            sent = await chat(http, plan, conversation_ids, answered)
            await wait_for_receipts(state, sent, plan.wait_s)
            attempted = len(plan.conversations) * plan.messages
            conn.send(("chatted", summarise(state, sent, attempted, answered)))
            command = await loop.run_in_executor(None, conn.recv)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def worker_main(plan: WorkerPlan, conn: Connection) -> None:
    """Entry point of a client process (spawned by `bench_streams`)."""
    raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run_worker(plan, conn))
    conn.send(("stopped", None))
