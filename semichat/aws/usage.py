"""What a process asked of DynamoDB and SQS, per operation: requests, capacity units, latency.

Counted from botocore's events on the process's clients (`watch`), so every caller is counted,
the chat's store and the connection registry alike, without wrapping them. A request is one API
call (botocore's retries inside it are not counted again), counted once answered or failed.
Latency is kept as counts per bucket (`LATENCY_BUCKETS_MS`): they add up across processes
(`harness/server_metrics.combine`) and between two reads of `/metrics`, where percentiles would
not. A long poll's latency is its wait, so `sqs:ReceiveMessage` is split into `.empty` (the wait
ran out) and `.messages` (woken by a message or already holding one).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from semichat.aws.capacity import request_write_units, response_read_units

# Upper edges, in ms; a latency goes to the first edge at or above it ("inf" beyond the last).
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    *(1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200),
    *(250, 300, 400, 500, 600, 800, 1000, 1200, 1500, 2000, 2500, 3000, 4000, 5000, 6000),
    *(8000, 10000, 12000, 15000, 20000, 25000, 30000),
)
_CONTEXT_KEY = "semichat_usage_started"
# SQS bills each 64 KB chunk of a request's payload as one request (SQS pricing page).
SQS_CHUNK_BYTES = 64 * 1024


def bucket_label(ms: float) -> str:
    i = bisect_left(LATENCY_BUCKETS_MS, ms)
    return "inf" if i == len(LATENCY_BUCKETS_MS) else f"{LATENCY_BUCKETS_MS[i]:g}"


def percentile_ms(buckets: Mapping[str, int], q: float) -> float | None:
    """The q-th percentile (0..100) of a bucketed latency, interpolated inside its bucket."""
    edges = [(float("inf") if k == "inf" else float(k), n) for k, n in buckets.items() if n]
    edges.sort()
    total = sum(n for _, n in edges)
    if not total:
        return None
    rank = q / 100 * total
    seen, low = 0, 0.0
    for edge, n in edges:
        if seen + n >= rank:
            if edge == float("inf"):
                return low
            lower = max([b for b in LATENCY_BUCKETS_MS if b < edge], default=0.0)
            return lower + (edge - lower) * max(0.0, rank - seen) / n
        seen += n
        low = edge
    return low


@dataclass
class BackendUsage:
    """Per "service:Operation": requests, errors, DynamoDB read and write units, latency."""

    requests: Counter[str] = field(default_factory=Counter)
    # SQS: requests as billed, one per 64 KB chunk of payload (`sqs_billed_requests`).
    billed: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    read_units: Counter[str] = field(default_factory=Counter)
    write_units: Counter[str] = field(default_factory=Counter)
    latency_ms: dict[str, Counter[str]] = field(default_factory=dict)

    def record(
        self,
        key: str,
        ms: float,
        failed: bool,
        read_units: float = 0.0,
        write_units: float = 0.0,
    ) -> None:
        self.requests[key] += 1
        if failed:
            self.errors[key] += 1
        if read_units:
            self.read_units[key] += read_units  # type: ignore[assignment]
        if write_units:
            self.write_units[key] += write_units  # type: ignore[assignment]
        self.time(key, ms)

    def time(self, key: str, ms: float) -> None:
        """A latency alone, no request: a long poll's wake-up, a group commit's cycle."""
        self.latency_ms.setdefault(key, Counter())[bucket_label(ms)] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "billed": dict(self.billed),
            "errors": dict(self.errors),
            "read_units": dict(self.read_units),
            "write_units": dict(self.write_units),
            "latency_ms": {k: dict(v) for k, v in self.latency_ms.items()},
        }


def sqs_billed_requests(
    operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any]
) -> int:
    """One request per 64 KB chunk of the payload it carries: a send's body, a receive's
    bodies; at least one (an empty receive is billed too)."""
    if operation == "SendMessage":
        size = len(str(params.get("MessageBody", "")).encode())
    elif operation == "SendMessageBatch":
        size = sum(len(str(e.get("MessageBody", "")).encode()) for e in params.get("Entries", []))
    elif operation == "ReceiveMessage":
        size = sum(len(str(m.get("Body", "")).encode()) for m in parsed.get("Messages", []))
    else:
        size = 0
    return max(1, -(-size // SQS_CHUNK_BYTES))


def _wake_ms(parsed: Mapping[str, Any], asked_at: float) -> float | None:
    """A long poll's wake-up: from the first message's arrival (its `SentTimestamp`) to the
    answer, when the message arrived while the poll waited (not one that waited for it)."""
    sent = [
        int(m["Attributes"]["SentTimestamp"])
        for m in parsed.get("Messages", [])
        if "SentTimestamp" in m.get("Attributes", {})
    ]
    if not sent or min(sent) / 1000 <= asked_at:
        return None
    return max(0.0, time.time() * 1000 - min(sent))


def watch(client: Any, service: str, usage: BackendUsage) -> None:
    """Count every call `client` makes into `usage` (botocore's before/after-call events)."""

    def started(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_CONTEXT_KEY] = (time.perf_counter(), params, time.time())

    def answered(parsed: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        t0, params, wall = context.pop(_CONTEXT_KEY, (None, {}, 0.0))
        if t0 is None:
            return
        ms = (time.perf_counter() - t0) * 1000
        operation = model.name
        failed = "Error" in parsed
        key = f"{service}:{operation}"
        if operation == "ReceiveMessage" and not failed:
            key += ".messages" if parsed.get("Messages") else ".empty"
            wake = _wake_ms(parsed, wall)
            if wake is not None:
                usage.time(f"{service}:ReceiveMessage.wake", wake)
        if service == "sqs":
            usage.billed[key] += sqs_billed_requests(operation, params, parsed)
        reads = writes = 0.0
        if service == "dynamodb" and not failed:
            reads = response_read_units(operation, params, parsed)
            writes = request_write_units(operation, params)
        usage.record(key, ms, failed, reads, writes)

    events = client.meta.events
    events.register(f"before-parameter-build.{service}", started)
    events.register(f"after-call.{service}", answered)
