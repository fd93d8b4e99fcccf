"""Benchmark: notification latency through the app beside the raw backend, N streams at once.

For each N, N users each hold one SSE stream of one `semichat serve` process (its own process,
as deployed); a round sends one message to each conversation of up to 100 of them (a
conversation's limit), all at once, and measures the time from the send requests to each
stream's event. The raw backend round in the same run: N aiobotocore receivers long-poll their
own queues directly, one message is sent to each queue, and the time from send to receipt is
measured. The app cannot beat the raw figure; the gap is what the app adds. Rounds repeat
(`--rounds`, streams and receivers held throughout); the spread over rounds is printed: the
median, min and max of the rounds' p50 and p99.

    python -m benchmarks.bench_fanout [--streams 1 50 100 300] [--rounds 5] [--routing R]
        [--backend-endpoint URL] [--sqs-endpoint URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import ClientSession, ClientTimeout, TCPConnector

from semichat.aws.clients import open_clients
from semichat.emulator.backend import start_backend_process, stop_backend_process
from semichat.harness.server_process import ServerProcess
from semichat.harness.sse_parser import SseParser
from semichat.processes import unwind_on_sigterm
from semichat.settings import ROUTINGS, Settings

CONVERSATION_MAX = 100
ROUND_TIMEOUT_S = 30.0
# Between rounds: every receiver is waiting again before the next send.
SETTLE_S = 1.0


def quantiles(values_s: list[float]) -> str:
    ms = np.array(values_s) * 1000
    if not len(ms):
        return "no samples"
    p50, p99 = np.percentile(ms, [50, 99])
    return f"p50 {p50:7.0f} ms  p99 {p99:7.0f} ms  max {ms.max():7.0f} ms  n={len(ms)}"


def spread(rounds: list[list[float]], n: int) -> str:
    """Median [min, max] over rounds of each round's p50 and p99, and what went missing."""
    p50s = [np.percentile(r, 50) * 1000 for r in rounds if r]
    p99s = [np.percentile(r, 99) * 1000 for r in rounds if r]
    missing = sum(n - len(r) for r in rounds)
    if not p50s:
        return "no samples"
    return (
        f"p50 {np.median(p50s):6.0f} [{min(p50s):.0f}, {max(p50s):.0f}] ms  "
        f"p99 {np.median(p99s):6.0f} [{min(p99s):.0f}, {max(p99s):.0f}] ms  "
        f"over {len(rounds)} rounds, {missing} missing"
    )


class StreamReader:
    """One held SSE stream; `arrivals` gets the time of each `message` event."""

    def __init__(self, resp: Any) -> None:
        self.resp = resp
        self.arrivals: asyncio.Queue[float] = asyncio.Queue()
        self.ready = asyncio.Event()

    async def run(self) -> None:
        parser = SseParser()
        async for line in self.resp.content:
            event = parser.feed(line)
            if event is None:
                continue
            if event.event == "ready":
                self.ready.set()
            elif event.event == "message":
                self.arrivals.put_nowait(time.monotonic())


async def app_rounds(target: str, n: int, rounds: int) -> list[list[float]]:
    timeout = ClientTimeout(total=None, sock_read=60)
    # No connection limit: aiohttp's default of 100 would starve the send behind N streams.
    async with ClientSession(target, timeout=timeout, connector=TCPConnector(limit=0)) as http:
        users = [f"f{uuid.uuid4().hex[:6]}-{i}" for i in range(n)]
        groups = [users[i : i + CONVERSATION_MAX] for i in range(0, n, CONVERSATION_MAX)]
        conversations = []
        for group in groups:
            async with http.post(
                "/api/chat/conversations",
                json={"participants": group[1:]},
                headers={"x-user-id": group[0]},
            ) as resp:
                conversations.append(((await resp.json())["conversationId"], group[0]))
        readers = [
            StreamReader(await http.get("/api/chat/stream", headers={"x-user-id": u}))
            for u in users
        ]
        tasks = [asyncio.create_task(r.run()) for r in readers]
        await asyncio.wait_for(asyncio.gather(*(r.ready.wait() for r in readers)), 60)
        results = []
        try:
            for _ in range(rounds):
                await asyncio.sleep(SETTLE_S)
                results.append(await app_round(http, conversations, readers))
        finally:
            for task in tasks:
                task.cancel()
            for r in readers:
                r.resp.close()
        return results


async def app_round(
    http: ClientSession, conversations: list[tuple[str, str]], readers: list[StreamReader]
) -> list[float]:
    async def send(conversation: str, sender: str) -> None:
        body = {"conversationId": conversation, "text": "x", "idempotencyKey": uuid.uuid4().hex}
        async with http.post("/api/chat/send", json=body, headers={"x-user-id": sender}) as resp:
            assert resp.status == 201, await resp.text()

    async def arrival(r: StreamReader) -> float:
        return await r.arrivals.get() - t0

    t0 = time.monotonic()
    waits = [asyncio.create_task(arrival(r)) for r in readers]
    await asyncio.gather(*(send(c, s) for c, s in conversations))
    done, pending = await asyncio.wait(waits, timeout=ROUND_TIMEOUT_S)
    for w in pending:
        w.cancel()
    # A late arrival would be taken for the next round's: drain what came after the timeout.
    for r in readers:
        while not r.arrivals.empty():
            r.arrivals.get_nowait()
    return [w.result() for w in done]


async def raw_rounds(settings: Settings, n: int, rounds: int) -> list[list[float]]:
    async with open_clients(settings) as clients:
        sqs = clients.sqs
        prefix = f"benchraw{uuid.uuid4().hex[:6]}-"
        urls = [(await sqs.create_queue(QueueName=f"{prefix}{i}"))["QueueUrl"] for i in range(n)]
        results = []
        try:
            for _ in range(rounds):
                results.append(await raw_round(sqs, urls))
        finally:
            await asyncio.gather(*(sqs.delete_queue(QueueUrl=u) for u in urls))
        return results


async def raw_round(sqs: Any, urls: list[str]) -> list[float]:
    got: list[float] = []

    async def receive(url: str) -> None:
        resp = await sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)
        for m in resp.get("Messages", []):
            got.append(time.monotonic())
            await sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    tasks = [asyncio.create_task(receive(u)) for u in urls]
    await asyncio.sleep(SETTLE_S)
    t0 = time.monotonic()
    await asyncio.gather(*(sqs.send_message(QueueUrl=u, MessageBody="x") for u in urls))
    await asyncio.wait(tasks, timeout=ROUND_TIMEOUT_S)
    return [t - t0 for t in got]


async def bench(args: argparse.Namespace, endpoint: str, sqs_endpoint: str) -> None:
    settings = Settings(dynamodb_endpoint=endpoint, sqs_endpoint=sqs_endpoint)
    extra = ["--routing", args.routing, "--queue-prefix", f"bf{uuid.uuid4().hex[:6]}-"]
    extra += ["--dynamodb-endpoint", endpoint, "--sqs-endpoint", sqs_endpoint]
    os.environ.update(SEMICHAT_MAX_STREAMS="0", SEMICHAT_SEND_BURST="1000")
    for n in args.streams:
        raw = await raw_rounds(settings, n, args.rounds)
        server = ServerProcess(
            "embedded", Path(tempfile.mkdtemp(prefix="bench-fanout-")), extra_args=extra
        )
        server.start()
        try:
            app = await app_rounds(server.target, n, args.rounds)
        finally:
            server.stop()
        load = f"load average {os.getloadavg()[0]:.2f}"
        print(f"N={n:4}  raw backend: {spread(raw, n)}")
        print(f"N={n:4}  through app: {spread(app, n)}  ({args.routing}, {load})")
        print(f"        pooled raw: {quantiles([x for r in raw for x in r])}")
        print(f"        pooled app: {quantiles([x for r in app for x in r])}")


def main() -> None:
    unwind_on_sigterm()  # stop what it started when it is stopped
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 50, 100])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--routing", choices=ROUTINGS, default="per_user_queue")
    parser.add_argument("--backend-endpoint", help="DynamoDB (and SQS) endpoint; default: moto")
    parser.add_argument("--sqs-endpoint", help="SQS endpoint, e.g. LocalStack's")
    args = parser.parse_args()
    proc, endpoint = (None, args.backend_endpoint)
    if endpoint is None:
        proc, endpoint = start_backend_process()
    try:
        asyncio.run(bench(args, endpoint, args.sqs_endpoint or endpoint))
    finally:
        if proc is not None:
            stop_backend_process(proc)


if __name__ == "__main__":
    main()
