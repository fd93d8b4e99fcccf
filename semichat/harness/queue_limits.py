"""Where one queue per user starts to hurt: a ramp of queues against an SQS endpoint.

Per step it creates queues as a new user's first use would (one CreateQueue each, a few at a
time), then sends one notification to the step's newest queue and long-polls it, as that user's
first stream would. It records CreateQueue latency and throttling, the time from CreateQueue to
the first notification received, what ListQueues returns with and without `MaxResults` (AWS
cuts an unpaged list at 1,000 silently), and the backend process's memory when its pid is given.
Only for emulators on loopback: it creates thousands of queues.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from botocore.exceptions import ClientError

THROTTLED = {"RequestThrottled", "ThrottlingException", "Throttling", "OverLimit"}


@dataclass(frozen=True)
class Ramp:
    queues: int = 1200
    step: int = 200
    concurrency: int = 8
    prefix: str = ""

    def name_prefix(self) -> str:
        return self.prefix or f"ramp{uuid.uuid4().hex[:6]}-"


def _create(sqs: Any, name: str) -> tuple[float, str | None, str | None]:
    started = time.perf_counter()
    try:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        return time.perf_counter() - started, url, None
    except ClientError as exc:
        return time.perf_counter() - started, None, exc.response["Error"]["Code"]


def _first_notification_s(sqs: Any, url: str) -> float:
    started = time.perf_counter()
    sqs.send_message(QueueUrl=url, MessageBody='{"messageId": "m", "conversationId": "c"}')
    while time.perf_counter() - started < 30:
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=1)
        if got.get("Messages"):
            return time.perf_counter() - started
    return float("nan")


def listed(sqs: Any, prefix: str) -> dict[str, int | bool]:
    """What ListQueues returns for the prefix: unpaged, and paged with MaxResults."""
    unpaged = sqs.list_queues(QueueNamePrefix=prefix)
    paged, token = 0, None
    while True:
        kwargs = {"QueueNamePrefix": prefix, "MaxResults": 1000}
        page = sqs.list_queues(**kwargs, **({"NextToken": token} if token else {}))
        paged += len(page.get("QueueUrls", []))
        token = page.get("NextToken")
        if not token:
            break
    return {
        "listed_unpaged": len(unpaged.get("QueueUrls", [])),
        "unpaged_next_token": "NextToken" in unpaged,
        "listed_paged": paged,
    }


def _rss_mb(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    import psutil

    return float(psutil.Process(pid).memory_info().rss / 2**20)


def ramp(sqs: Any, plan: Ramp = Ramp(), backend_pid: int | None = None) -> pd.DataFrame:
    """One row per step: queues so far, CreateQueue latency, throttles, first notification,
    ListQueues' answers, backend memory."""
    prefix = plan.name_prefix()
    rows, made = [], 0
    with ThreadPoolExecutor(plan.concurrency) as pool:
        while made < plan.queues:
            n = min(plan.step, plan.queues - made)
            names = [f"{prefix}u{made + i}" for i in range(n)]
            results = list(pool.map(lambda name: _create(sqs, name), names))
            made += n
            latency = np.array([r[0] for r in results]) * 1000
            errors = [r[2] for r in results if r[2]]
            urls = [r[1] for r in results if r[1]]
            rows.append(
                {
                    "queues": made,
                    "create_p50_ms": float(np.percentile(latency, 50)),
                    "create_p99_ms": float(np.percentile(latency, 99)),
                    "throttled": sum(e in THROTTLED for e in errors),
                    "errors": len(errors),
                    "first_notification_ms": _first_notification_s(sqs, urls[-1]) * 1000
                    if urls
                    else float("nan"),
                    **listed(sqs, prefix),
                    "backend_rss_mb": _rss_mb(backend_pid),
                }
            )
    return pd.DataFrame(rows)


def queues_needed(users: int, processes: int, shards: int = 16) -> dict[str, int]:
    """Queues each strategy holds for `users` users served by `processes` server processes."""
    return {
        "per_user_queue": users,
        "preprovisioned": users,
        "fifo": users,
        "sharded": shards,
        "instance": processes,
    }


def quota_hit(quota: int = 2, users: int = 4, run_dir: Path | None = None) -> pd.DataFrame:
    """What users meet when the account's queue quota is reached: a `semichat serve` with the
    nemesis's `queue_quota` (on its own embedded backend), and one stream opened per user in
    turn. One row per user: the stream's status and the first thing it said."""
    import tempfile
    import urllib.error
    import urllib.request

    from semichat.harness.server_process import ServerProcess

    with tempfile.TemporaryDirectory() as scratch:
        server = ServerProcess("embedded", run_dir or Path(scratch), f"queue_quota={quota}")
        server.start()
        rows = []
        try:
            for i in range(users):
                request = urllib.request.Request(
                    f"{server.target}/api/chat/stream", headers={"x-user-id": f"quota-u{i}"}
                )
                try:
                    with urllib.request.urlopen(request, timeout=10) as resp:
                        status, first = resp.status, resp.readline().decode().strip()
                except urllib.error.HTTPError as exc:
                    status, first = exc.code, exc.read().decode().strip()
                rows.append({"user": f"quota-u{i}", "status": status, "says": first[:160]})
        finally:
            server.stop()
    return pd.DataFrame(rows)
