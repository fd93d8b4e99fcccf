"""Benchmark: N idle streams held against one server process, and a small chat among them.

For each N, a fresh embedded backend (`semichat backend`) and one `semichat serve --routing R`
process start; `--clients K` client processes (`stream_clients.py`) open N streams in all and hold
them. While they are held, it measures:

- streams connected (with `ready`) and the time from the first connect to the last `ready`;
- RSS of the server and of its backend before and after (psutil), per stream;
- SQS requests per idle user per minute, from the server's `/metrics` over an idle window
  (and the DynamoDB registry requests where the strategy makes them);
- the raw backend figure in the same window: the round trip of one SQS send to a queue a
  receiver is long-polling, on the same backend (`--raw` times, one after another);
- heartbeat lag: how late each stream's pings came (the longest gap minus the interval);
- then a few small conversations among the held streams (`--conversations` of `--size`
  users, `--messages` each, `--interval` s apart): notification latency from the send request
  to each member's stream (the sender's included), p50/p99/max, and notifications missing.

Loopback only; every phase is bounded. The server's stream limits are lifted for the run
(`SEMICHAT_MAX_STREAMS=0`), its pool sized for N, and the open-files limit raised to the hard one;
with `--default-limits` none of that: the server runs with its own defaults (it raises its
open-files limit itself and derives its stream cap from the routing), as a new user's would.

    python -m benchmarks.bench_streams --routing instance --streams 1000 10000 --clients 2
    python -m benchmarks.bench_streams --routing instance --streams 10000 --clients 2 \
        --default-limits
    python -m benchmarks.bench_streams --routing per_user_queue --streams 500 \
        --sqs-endpoint http://127.0.0.1:4566   # SQS from LocalStack, DynamoDB from moto
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from benchmarks.bench_fanout import quantiles
from benchmarks.stream_clients import WorkerPlan, raise_fd_limit, worker_main
from semichat.aws.clients import open_clients
from semichat.emulator.backend import start_backend_process, stop_backend_process
from semichat.harness.server_metrics import get_json
from semichat.harness.server_process import ServerProcess
from semichat.processes import unwind_on_sigterm
from semichat.settings import ROUTINGS, Settings

HEARTBEAT_S = 10.0
PHASE_TIMEOUT_S = 600.0


def rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def heartbeat_lags(pings: dict[str, list[float]], end: float) -> list[float]:
    """Per stream, how much later than `HEARTBEAT_S` its longest wait for a ping was."""
    lags = []
    for times in pings.values():
        marks = [*times, end]
        lags.append(max(0.0, max(np.diff(marks)) - HEARTBEAT_S))
    return lags


def plan_clients(args: argparse.Namespace, n: int, target: str) -> list[WorkerPlan]:
    """Split N users over the clients; each client's conversations are among its own users."""
    run = uuid.uuid4().hex[:6]
    users = [f"s{run}-{i}" for i in range(n)]
    shares = np.array_split(np.arange(n), args.clients)
    per_client = max(1, args.conversations // args.clients)
    plans = []
    for share in shares:
        mine = [users[i] for i in share]
        conversations = [
            mine[k * args.size : (k + 1) * args.size]
            for k in range(min(per_client, len(mine) // args.size))
        ]
        plans.append(
            WorkerPlan(target, mine, conversations, args.messages, args.interval, args.wait)
        )
    return plans


async def recv(conn: Connection, within_s: float = PHASE_TIMEOUT_S) -> tuple[str, Any]:
    loop = asyncio.get_running_loop()
    if not await loop.run_in_executor(None, conn.poll, within_s):
        raise TimeoutError("a client process did not report in time")
    result: tuple[str, Any] = conn.recv()
    return result


async def raw_round_trips(settings: Settings, count: int) -> list[float]:
    """One SQS send to a queue that a receiver long-polls, `count` times in a row."""
    async with open_clients(settings) as clients:
        sqs = clients.sqs
        url = (await sqs.create_queue(QueueName=f"benchraw-{uuid.uuid4().hex[:8]}"))["QueueUrl"]
        trips = []
        for _ in range(count):
            poll = asyncio.create_task(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20))
            await asyncio.sleep(0.2)  # the poll is waiting at the backend
            t0 = time.monotonic()
            await sqs.send_message(QueueUrl=url, MessageBody="x")
            got = await poll
            trips.append(time.monotonic() - t0)
            for m in got.get("Messages", []):
                await sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        await sqs.delete_queue(QueueUrl=url)
        return trips


def sqs_per_user_minute(before: dict[str, Any], after: dict[str, Any], n: int, s: float) -> str:
    sqs = after["sqs"]["requests"] - before["sqs"]["requests"]
    line = f"{sqs / n / (s / 60):.4f} SQS requests per idle user-minute"
    d0, d1 = before.get("delivery", {}), after.get("delivery", {})
    registry = sum(d1.get(k, 0) - d0.get(k, 0) for k in ("registry_writes", "registry_deletes"))
    if registry:
        line += f"; registry writes {registry / n / (s / 60):.4f} per user-minute (DynamoDB)"
    return line


def start_profilers(out: Path | None, server: int, backend: int, n: int) -> list[Any]:
    """py-spy on the server and the backend during the idle window and the chat;
    collapsed stacks (`*.txt`, one line per stack with its sample count) for `--profile`."""
    if out is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    py_spy = Path(sys.executable).with_name("py-spy")
    return [
        subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                "50",
                "--nonblocking",
                "-o",
                str(out / f"{name}-{n}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in (("server", server), ("backend", backend))
    ]


def stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
    for p in profilers:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            p.wait(30)
    profilers.clear()


def report_chat(chatted: list[dict[str, Any]], end: float) -> None:
    """Heartbeat lag over the whole hold, then the chat's send times and latencies."""
    pings = {u: p for c in chatted for u, p in c["pings"].items()}
    print(
        f"  heartbeat   lag {quantiles(heartbeat_lags(pings, end))}; streams dropped "
        f"{sum(c['dropped_after_ready'] for c in chatted)}"
    )
    latencies = [x for c in chatted for x in c["latencies"]]
    stored = sum(c["sends_stored"] for c in chatted)
    print(f"  send        answered {quantiles([x for c in chatted for x in c['send_times']])}")
    print(
        f"  chat        {quantiles(latencies)}; {stored} of "
        f"{sum(c['sends_attempted'] for c in chatted)} sends stored, "
        f"{sum(c['missing'] for c in chatted)} notifications missing "
        f"(load average {os.getloadavg()[0]:.2f})"
    )


async def run_once(args: argparse.Namespace, n: int) -> None:
    backend, endpoint = start_backend_process()
    run_dir = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    os.environ.update(SEMICHAT_HEARTBEAT_SECONDS=str(HEARTBEAT_S))
    if not args.default_limits:
        os.environ.update(SEMICHAT_MAX_STREAMS="0", SEMICHAT_MAX_POOL_CONNECTIONS=str(n + 500))
    server = ServerProcess("embedded", run_dir, endpoint_url=endpoint, extra_args=args.serve_args)
    server.start()
    assert server.proc is not None
    ctx = multiprocessing.get_context("spawn")
    clients = []
    profilers: list[subprocess.Popen[bytes]] = []
    try:
        base = rss(server.proc.pid), rss(backend.pid)
        started = time.time()
        for plan in plan_clients(args, n, server.target):
            here, there = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(plan, there), daemon=True)
            proc.start()
            clients.append((proc, here))
        connected = [(await recv(c))[1] for _, c in clients]
        await asyncio.sleep(2)  # let the server settle before its memory is read
        held = rss(server.proc.pid), rss(backend.pid)
        ready = sum(c["ready"] for c in connected)
        last = max((c["last_ready_at"] or started) for c in connected)
        failures = [f for c in connected for f in c["failed"]]
        print(f"routing {args.routing}, N={n}, load average {os.getloadavg()[0]:.2f}")
        print(
            f"  connected   {ready} of {n} in {last - started:.1f} s; failed {len(failures)}, "
            f"retried {sum(c['retries'] for c in connected)} times"
            + (f" ({sorted(set(failures))[:3]})" if failures else "")
        )
        server_kb = (held[0] - base[0]) / 1024 / max(ready, 1)
        backend_kb = (held[1] - base[1]) / 1024 / max(ready, 1)
        print(
            f"  RSS/stream  {server_kb + backend_kb:.1f} KB (server {server_kb:.1f} KB, backend "
            f"{backend_kb:.1f} KB; totals {held[0] >> 20} MB + {held[1] >> 20} MB)"
        )
        settings = Settings(endpoint_url=endpoint, sqs_endpoint=args.sqs_endpoint)
        profilers = start_profilers(args.profile, server.proc.pid, backend.pid, n)
        metrics0, t0 = get_json(f"{server.target}/metrics"), time.monotonic()
        raw_task = asyncio.create_task(raw_round_trips(settings, args.raw))
        await asyncio.sleep(args.idle)
        metrics1, t1 = get_json(f"{server.target}/metrics"), time.monotonic()
        print(
            f"  idle        {sqs_per_user_minute(metrics0, metrics1, ready, t1 - t0)}"
            f" over {t1 - t0:.0f} s"
        )
        print(f"  raw SQS     send -> long-poll receipt: {quantiles(await raw_task)}")
        for _, c in clients:
            c.send("chat")
        chatted = [(await recv(c))[1] for _, c in clients]
        end = time.time()
        report_chat(chatted, end)
        stop_profilers(profilers)
        for _, c in clients:
            c.send("stop")
        for _, c in clients:
            await recv(c, 60)
    finally:
        stop_profilers(profilers)
        for proc, _ in clients:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        server.stop()
        stop_backend_process(backend)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routing", choices=ROUTINGS, default="instance")
    parser.add_argument("--streams", type=int, nargs="+", default=[1000])
    parser.add_argument("--clients", type=int, default=1, help="client processes")
    parser.add_argument("--repeat", type=int, default=1, help="runs per N")
    parser.add_argument("--idle", type=float, default=30.0, help="idle window (s)")
    parser.add_argument("--raw", type=int, default=10, help="raw SQS round trips in the window")
    parser.add_argument("--conversations", type=int, default=10)
    parser.add_argument("--size", type=int, default=3, help="members per conversation")
    parser.add_argument("--messages", type=int, default=5, help="per conversation")
    parser.add_argument("--interval", type=float, default=1.0, help="s between sends")
    parser.add_argument("--wait", type=float, default=30.0, help="for the last notifications (s)")
    parser.add_argument("--profile", type=Path, help="write py-spy profiles into this folder")
    parser.add_argument(
        "--serve-arg",
        dest="serve_args",
        action="append",
        default=[],
        help="extra `semichat serve` argument (repeatable)",
    )
    parser.add_argument(
        "--default-limits",
        action="store_true",
        help="leave the server's stream cap, pool and open-files limit at their defaults",
    )
    parser.add_argument("--sqs-endpoint", help="SQS endpoint, e.g. LocalStack's; default: moto")
    args = parser.parse_args()
    args.serve_args = ["--routing", args.routing, *args.serve_args]
    if args.sqs_endpoint:
        args.serve_args += ["--sqs-endpoint", args.sqs_endpoint]
    return args


def main() -> None:
    unwind_on_sigterm()  # stop what it started when it is stopped
    args = parse_args()
    # The clients raise their own limit; with --default-limits the server must raise its own.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if not args.default_limits:
        soft, hard = raise_fd_limit()
    print(f"open files limit {soft} (hard {hard}); cpus {os.cpu_count()}")
    for n in args.streams:
        for _ in range(args.repeat):
            asyncio.run(run_once(args, n))


if __name__ == "__main__":
    main()
