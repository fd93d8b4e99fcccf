"""`semichat serve --processes 2`: two processes on one port over one embedded backend, with a
user's tabs and a conversation's members spread across them, for every routing strategy.

Which process holds a stream is read from `/metrics` (its `pid` and `limits.open_streams`),
asked over fresh connections until both processes have answered. Per-user-queue strategies
let a user's tabs compete (each notification reaches one of them); the fan-out strategies
reach every tab, on every process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from semichat import ports
from semichat.harness.server_metrics import combine, fleet_metrics, get_json
from semichat.harness.sse_parser import SseParser
from semichat.server.delivery.routing.base import Envelope, Notification
from semichat.server.delivery.routing.sharded import ShardedRouter
from semichat.server.metrics import DeliveryCounters
from semichat.settings import ROUTINGS, Settings

from .sse_helpers import next_events

FAN_OUT = {"sharded", "instance"}
MAX_TABS = 12
NOTIFY_TIMEOUT_S = 30.0


def test_metrics_of_several_processes_add_up() -> None:
    a = {"pid": 1, "time": 5.0, "sqs": {"send": 2, "open_streams": 1}, "routing": "instance"}
    b = {"pid": 2, "time": 7.0, "sqs": {"send": 3, "open_streams": 4}, "routing": "instance"}
    combined = combine([a, b])
    assert combined["sqs"] == {"send": 5, "open_streams": 5}
    assert combined["time"] == 7.0 and combined["routing"] == "instance"
    assert combined["pids"] == [1, 2] and set(combined["processes"]) == {"1", "2"}


@dataclass
class Served:
    base: str
    proc: subprocess.Popen[bytes]
    users: tuple[str, str, str] = field(default_factory=lambda: ("al", "bo", "cy"))
    held: socket.socket | None = None


def start_served(endpoint: str, routing: str) -> Served:
    # Held by the test until the supervisor holds it too (SO_REUSEPORT both): never let go.
    held = ports.reserve()
    port, prefix = ports.port_of(held), f"p{uuid.uuid4().hex[:6]}-"
    users = tuple(f"{u}-{prefix[:-1]}" for u in ("al", "bo", "cy"))
    flags = ["--endpoint-url", endpoint, "--queue-prefix", prefix, "--routing", routing]
    if routing == "preprovisioned":
        subprocess.run(
            [sys.executable, "-m", "semichat", "provision", *flags, "--users", ",".join(users)],
            check=True,
            capture_output=True,
            timeout=60,
        )
    env = {**os.environ, "SEMICHAT_MAX_STREAMS_PER_USER": "0", "SEMICHAT_SENDS_PER_SECOND": "0"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "semichat",
            "serve",
            "--port",
            str(port),
            "--processes",
            "2",
            "--log-level",
            "WARNING",
            *flags,
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, "serve --processes 2 exited"
        try:
            if len(fleet_metrics(base, 2)["pids"]) == 2:
                return Served(base, proc, users, held)  # type: ignore[arg-type]
        except OSError:
            time.sleep(0.3)
    raise AssertionError("serve --processes 2 did not answer from two processes")


def held_by(base: str) -> dict[str, int]:
    """Open streams per process id."""
    metrics = fleet_metrics(base, 2)
    return {pid: m["limits"]["open_streams"] for pid, m in metrics["processes"].items()}


@dataclass
class Tab:
    user: str
    pid: str
    resp: Any


async def open_spread_tabs(http: aiohttp.ClientSession, base: str, user: str) -> list[Tab]:
    """Open tabs of `user` (each a new connection) until both processes hold one."""
    tabs: list[Tab] = []
    while {t.pid for t in tabs} != set(held_by(base)) and len(tabs) < MAX_TABS:
        before = await asyncio.to_thread(held_by, base)
        resp = await http.get("/api/chat/stream", headers={"x-user-id": user})
        assert resp.status == 200
        await asyncio.wait_for(next_events(resp, 1, "ready"), 20)
        after = await asyncio.to_thread(held_by, base)
        grew = [pid for pid in after if after[pid] > before.get(pid, 0)]
        assert len(grew) == 1, (before, after)
        tabs.append(Tab(user, grew[0], resp))
    assert len({t.pid for t in tabs}) == 2, f"{MAX_TABS} tabs of {user} all on one process"
    return tabs


async def notified(tab: Tab, message_id: str, found: asyncio.Queue[Tab]) -> None:
    parser = SseParser()
    async for line in tab.resp.content:
        event = parser.feed(line)
        if event is not None and event.event == "message" and message_id in event.data:
            await found.put(tab)
            return


@pytest.fixture(params=ROUTINGS)
async def served(request: pytest.FixtureRequest, embedded_endpoint: str) -> AsyncIterator[Served]:
    s = await asyncio.to_thread(start_served, embedded_endpoint, request.param)
    try:
        yield s
    finally:
        s.proc.terminate()
        s.proc.wait(30)
        if s.held is not None:
            s.held.close()


async def test_tabs_and_members_across_processes_are_notified(served: Served) -> None:
    al, bo, cy = served.users
    routing = get_json(f"{served.base}/metrics")["routing"]
    connector = aiohttp.TCPConnector(force_close=True)  # each stream its own connection
    timeout = aiohttp.ClientTimeout(total=None, sock_read=40)
    async with aiohttp.ClientSession(served.base, connector=connector, timeout=timeout) as http:
        tabs = await open_spread_tabs(http, served.base, al)
        tabs += await open_spread_tabs(http, served.base, bo)
        async with http.post(
            "/api/chat/conversations", json={"participants": [al, bo, cy]},
            headers={"x-user-id": cy},
        ) as resp:  # fmt: skip
            conversation = (await resp.json())["conversationId"]
        async with http.post(
            "/api/chat/send",
            json={"conversationId": conversation, "text": "hi", "idempotencyKey": "k1"},
            headers={"x-user-id": cy},
        ) as resp:
            assert resp.status in (200, 201)
            message_id = (await resp.json())["messageId"]
        found: asyncio.Queue[Tab] = asyncio.Queue()
        readers = [asyncio.create_task(notified(t, message_id, found)) for t in tabs]
        reached: list[Tab] = []
        try:
            async with asyncio.timeout(NOTIFY_TIMEOUT_S):
                while not done(routing, tabs, reached):
                    reached.append(await found.get())
        except TimeoutError:
            pass
        finally:
            for r in readers:
                r.cancel()
            for t in tabs:
                t.resp.close()
    missed = [(t.user, t.pid) for t in tabs if t not in reached]
    assert done(routing, tabs, reached), f"{routing}: tabs never notified: {missed}"


def done(routing: str, tabs: list[Tab], reached: list[Tab]) -> bool:
    """Fan-out strategies: every tab. Per-user queues: one tab of each user (tabs compete)."""
    if routing in FAN_OUT:
        return len(reached) == len(tabs)
    return {t.user for t in reached} == {t.user for t in tabs}


def test_the_supervisor_leaves_no_process_behind(embedded_endpoint: str) -> None:
    """SIGTERM stops every child; a supervisor killed outright takes its children with it."""
    for stop in (signal.SIGTERM, signal.SIGKILL):
        served = start_served(embedded_endpoint, "per_user_queue")
        pids = [int(p) for p in fleet_metrics(served.base, 2)["pids"]]
        served.proc.send_signal(stop)
        served.proc.wait(30)
        deadline = time.monotonic() + 30
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(alive(p) for p in pids), f"children {pids} outlived a {stop.name}"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it only waits for its parent to read its status.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


class FakeQueues:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def create_queue(self, name: str, attributes: dict[str, str]) -> str:
        return f"url/{name}"

    create_queue_patiently = create_queue

    async def send(self, url: str, body: str) -> None:
        self.sent.append(body)


def test_an_envelope_of_one_process_reads_as_before() -> None:
    plain = Envelope(Notification("m1", "c1"), ("al",))
    assert "visited" not in plain.to_json()
    passed_on = Envelope(Notification("m1", "c1"), ("al", "bo"), ("p1",), 3)
    assert Envelope.from_json(passed_on.to_json()) == passed_on


async def test_sharded_forwards_until_every_process_has_seen_a_notification() -> None:
    queues = FakeQueues()
    counters = DeliveryCounters()
    settings = Settings(routing="sharded", processes=2, shards=2)
    router = ShardedRouter(queues, None, settings, counters)  # type: ignore[arg-type]
    fresh = Envelope(Notification("m1", "c1"), ("al", "bo"))
    await router.forward(fresh, ["bo"])
    onward = Envelope.from_json(queues.sent[-1])
    assert onward.visited == (router.process_id,) and onward.recipients == ("al", "bo")
    assert router.seen(onward) and counters.forwarded == 1
    # Seen by the other process already: this one was the last; bo is held nowhere seen.
    await router.forward(Envelope(fresh.notification, ("al", "bo"), ("other",), 1), ["bo"])
    assert len(queues.sent) == 1 and counters.not_held == 1
    # Bounced between the same processes too often: given up.
    await router.forward(Envelope(fresh.notification, ("al",), (router.process_id,), 16), [])
    assert len(queues.sent) == 1
