"""Benchmark: notification latency through the app beside the raw backend, N streams at once.

For each N, N users each hold one SSE stream; one message to a conversation of all N is sent
and the time from the send request to each stream's event is measured. In the same run, the raw
backend figure: N aiobotocore receivers long-poll their own queues directly, one message is sent
to each queue, and the time from send to receipt is measured. The app cannot beat the raw
figure; the gap is what the app adds.

    python -m benchmarks.bench_fanout [--streams 1 50 100] [--backend-endpoint URL]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time
import uuid
from typing import Any

import numpy as np
from aiohttp import ClientSession, ClientTimeout, TCPConnector
from aiohttp.test_utils import TestServer

from semichat.aws.clients import open_clients
from semichat.aws.embedded import start_backend_process, stop_backend_process
from semichat.harness.sse_parser import SseParser
from semichat.server.app import create_app
from semichat.settings import Settings


def quantiles(values_s: list[float]) -> str:
    ms = np.array(values_s) * 1000
    if not len(ms):
        return "no samples"
    p50, p99 = np.percentile(ms, [50, 99])
    return f"p50 {p50:7.0f} ms  p99 {p99:7.0f} ms  max {ms.max():7.0f} ms  n={len(ms)}"


async def next_event(resp: Any, kind: str) -> None:
    parser = SseParser()
    async for line in resp.content:
        event = parser.feed(line)
        if event is not None and event.event == kind:
            return


async def app_round(settings: Settings, n: int) -> list[float]:
    server = TestServer(create_app(settings), host="127.0.0.1", handler_cancellation=True)
    await server.start_server()
    timeout = ClientTimeout(total=None, sock_read=60)
    try:
        # No connection limit: aiohttp's default of 100 would starve the send behind N streams.
        connector = TCPConnector(limit=0)
        async with ClientSession(
            str(server.make_url("")), timeout=timeout, connector=connector
        ) as http:
            users = [f"b{i}" for i in range(n)]
            async with http.post(
                "/api/chat/conversations",
                json={"participants": users[1:]},
                headers={"x-user-id": users[0]},
            ) as resp:
                conversation = (await resp.json())["conversationId"]
            streams = [await http.get("/api/chat/stream", headers={"x-user-id": u}) for u in users]
            await asyncio.gather(*(next_event(s, "ready") for s in streams))
            await asyncio.sleep(0.5)
            got: list[float] = []

            async def listen(s: Any) -> None:
                await next_event(s, "message")
                got.append(time.monotonic())

            tasks = [asyncio.create_task(listen(s)) for s in streams]
            t0 = time.monotonic()
            body = {"conversationId": conversation, "text": "x", "idempotencyKey": "k"}
            async with http.post(
                "/api/chat/send", json=body, headers={"x-user-id": users[0]}
            ) as resp:
                assert resp.status == 201, await resp.text()
            await asyncio.wait(tasks, timeout=30)
            for s in streams:
                s.close()
            return [t - t0 for t in got]
    finally:
        await server.close()


async def raw_round(settings: Settings, n: int) -> list[float]:
    async with open_clients(settings) as clients:
        sqs = clients.sqs
        urls = [
            (await sqs.create_queue(QueueName=f"{settings.queue_prefix}raw{i}"))["QueueUrl"]
            for i in range(n)
        ]
        got: list[float] = []

        async def receive(url: str) -> None:
            resp = await sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)
            if resp.get("Messages"):
                got.append(time.monotonic())

        tasks = [asyncio.create_task(receive(u)) for u in urls]
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        await asyncio.gather(*(sqs.send_message(QueueUrl=u, MessageBody="x") for u in urls))
        await asyncio.wait(tasks, timeout=30)
        return [t - t0 for t in got]


async def main(streams: list[int], endpoint: str | None, sqs_endpoint: str | None) -> None:
    proc = None
    if endpoint is None:
        proc, endpoint = start_backend_process()
    try:
        for n in streams:
            prefix = f"bench{uuid.uuid4().hex[:6]}-"
            settings = Settings(
                dynamodb_endpoint=endpoint,
                sqs_endpoint=sqs_endpoint or endpoint,
                table_prefix=prefix,
                queue_prefix=prefix,
                create_tables=True,
            )
            raw = await raw_round(dataclasses.replace(settings, queue_prefix=prefix + "r"), n)
            app = await app_round(settings, n)
            print(f"N={n:4}  raw backend: {quantiles(raw)}")
            print(f"N={n:4}  through app: {quantiles(app)}")
    finally:
        if proc is not None:
            stop_backend_process(proc)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 50, 100])
    parser.add_argument("--backend-endpoint", help="DynamoDB (and SQS) endpoint; default: moto")
    parser.add_argument("--sqs-endpoint", help="SQS endpoint, e.g. LocalStack's")
    args = parser.parse_args()
    asyncio.run(main(args.streams, args.backend_endpoint, args.sqs_endpoint))
