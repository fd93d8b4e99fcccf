"""Benchmark: how many requests a second the backend serves to the app's own data layer.

The chat load's latency on the embedded backend is set by how fast moto answers. This measures
that ceiling directly, with the server's own clients and calls (aiobotocore, `ChatStore`,
`SqsQueues`): for each operation and concurrency, as many calls as possible for `--seconds`,
then calls per second, latency p50/p99, and the CPU the backend process and this client
process used per request (psutil), so the figure can be set against a run's demand
(sends a second times requests per send).

Operations: `history` (the history read behind every refetch: a Query of 21 items from a
conversation of 200 messages), `send` (one SendMessage of a notification), `store` (the
send path's store: the conditional transaction of idempotency record and message, one request
a call; until 29 November a GetItem of the record came first, two requests a call).

    python -m benchmarks.bench_backend [--concurrency 1 8 32] [--seconds 5] [--ops history]
        [--backend-endpoint URL] [--sqs-endpoint URL]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import psutil

from semichat.aws.clients import open_clients
from semichat.emulator.backend import start_backend_process, stop_backend_process
from semichat.server.chat.service import content_hash
from semichat.server.chat.store import ChatStore, Message, idempotency_record
from semichat.server.delivery.routing import Notification
from semichat.server.delivery.sqs import SqsQueues
from semichat.server.metrics import SqsCounters
from semichat.settings import Settings

HISTORY_SIZE = 200
PAGE = 20


async def _run(op: Callable[[], Awaitable[Any]], concurrency: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            await op()
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def _message(conversation: str) -> Message:
    return Message(
        message_id=uuid.uuid4().hex,
        conversation_id=conversation,
        sender_id="bench",
        text="benchmark message",
        created_at=f"{time.time():.6f}",
    )


async def bench(args: argparse.Namespace, backend: psutil.Process | None) -> None:
    settings = Settings(dynamodb_endpoint=args.endpoint, sqs_endpoint=args.sqs_endpoint)
    me = psutil.Process()
    async with open_clients(settings) as clients:
        store = ChatStore(clients.dynamodb, settings.table_prefix)
        queues = SqsQueues(clients.sqs, SqsCounters())
        conversation = f"bench-{uuid.uuid4().hex[:8]}"
        for _ in range(HISTORY_SIZE):
            m = _message(conversation)
            key = f"k{m.message_id}"
            await store.store_message(
                m, idempotency_record(m, key, content_hash(conversation, "x"), 0, 0)
            )
        # A fresh queue for each run of `send`: nothing receives, and a backlog left by the
        # run before would be measured too.
        queue = {"url": ""}
        body = Notification("m", conversation).to_json()

        async def history() -> Any:
            return await store.history(conversation, args.page, None)

        async def send() -> Any:
            return await queues.send(queue["url"], body)

        async def stored() -> Any:
            m = _message(f"{conversation}-w")
            return await store.store_message(
                m, idempotency_record(m, f"k{m.message_id}", "h", 0, 0)
            )

        ops = {"history": history, "send": send, "store": stored}
        ops = {name: ops[name] for name in args.ops}
        print(f"{'op':8} {'conc':>4} {'calls/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'backend CPU ms/call':>19} {'client CPU ms/call':>18}")  # fmt: skip
        for name, op in ops.items():
            for c in args.concurrency:
                queue["url"] = await queues.create_queue(f"bench-{uuid.uuid4().hex[:8]}", {})
                cpu0 = backend.cpu_times() if backend else None
                me0 = me.cpu_times()
                lat = await _run(op, c, args.seconds)
                n = len(lat)
                me1 = me.cpu_times()
                client_ms = (me1.user + me1.system - me0.user - me0.system) * 1000 / n
                backend_ms = float("nan")
                if backend and cpu0:
                    cpu1 = backend.cpu_times()
                    backend_ms = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) * 1000 / n
                p50, p99 = np.percentile(np.array(lat) * 1000, [50, 99])
                print(f"{name:8} {c:4} {n / args.seconds:7.0f} {p50:7.1f} {p99:7.1f} "
                      f"{backend_ms:19.2f} {client_ms:18.2f}")  # fmt: skip
    print(f"load average {psutil.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--ops", nargs="+", choices=["history", "send", "store"],
                        default=["history", "send", "store"])  # fmt: skip
    parser.add_argument("--page", type=int, default=PAGE, help="messages a history read returns")
    parser.add_argument("--backend-endpoint", help="DynamoDB (and SQS) endpoint; default: moto")
    parser.add_argument("--sqs-endpoint", help="SQS endpoint, e.g. LocalStack's")
    args = parser.parse_args()
    proc, args.endpoint = (None, args.backend_endpoint)
    if args.endpoint is None:
        proc, args.endpoint = start_backend_process()
    args.sqs_endpoint = args.sqs_endpoint or args.endpoint
    try:
        asyncio.run(bench(args, psutil.Process(proc.pid) if proc else None))
    finally:
        if proc is not None:
            stop_backend_process(proc)


if __name__ == "__main__":
    main()
