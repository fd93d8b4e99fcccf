"""Limits AWS documents, and where each strategy meets them.

Each limit says what it bounds, its value and its source. `users_at` is the user count at
which a strategy's modelled figures reach it (None: not at any user count for this activity);
some are met by a conversation's size and pace instead, whatever the user count (`note`).
Sources (read 2026-12-07; docs/capacity.md repeats them):
- SQS Developer Guide, "Amazon SQS FIFO queue quotas" / "message quotas": FIFO 300 API calls per
  second per action without batching, 3,000 messages per second with batches of 10; about
  120,000 in-flight messages per queue (standard; FIFO now the same, older pages 20,000).
- SQS API Reference, ListQueues: at most 1,000 results per call; `MaxResults` and `NextToken`
  page beyond (boto3 issue 3406: without `MaxResults` the list is cut at 1,000 silently).
- SQS Developer Guide, "Setting up long polling": one thread per queue when long-polling many
  queues; here one pooled connection per waiting poll (`Settings.max_pool_connections`).
- DynamoDB Developer Guide, "Partitions and data distribution" / burst and adaptive capacity:
  3,000 RCU and 1,000 WCU per partition; a conversation's messages share one partition key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from semichat.aws.capacity import read_units
from semichat.model.chat import CATCH_UP_FIRST_PAGE, message_item_bytes
from semichat.model.inputs import PER_USER, Activity, ProcessLimits, Setup

FIFO_TPS_PER_ACTION = 300
IN_FLIGHT_PER_QUEUE = 120_000
LIST_QUEUES_PAGE = 1_000
PARTITION_RCU = 3_000
PARTITION_WCU = 1_000


@dataclass(frozen=True)
class Limit:
    name: str
    source: str
    users_at: float | None
    note: str = ""


def strategy_limits(
    activity: Activity,
    setup: Setup,
    limits: ProcessLimits,
    sends_per_user_s: float,
    in_flight_per_user: float,
    poll_cycle_s: float = 0.05,
) -> list[Limit]:
    """Every limit that applies to this strategy, with the user count that meets it.

    `sends_per_user_s`: SQS SendMessage requests per second per user (modelled);
    `in_flight_per_user`: a shared queue's in-flight messages per user (modelled, Little's law);
    `poll_cycle_s`: a dispatcher's time from one receive to the next (wake-up, round trip)."""
    a, routing = activity, setup.routing
    out: list[Limit] = []
    if routing in PER_USER:
        out.append(
            Limit(
                "ListQueues paging (1,000 queues a page)",
                "SQS API Reference, ListQueues",
                LIST_QUEUES_PAGE,
                "a queue per user: operator tooling must page past 1,000 users",
            )
        )
        out.append(
            Limit(
                f"long polls per process (pool {limits.pool_connections}, "
                f"{limits.streams_per_process} streams held)",
                "SQS Developer Guide, long polling: a thread per queue; measured streams",
                min(limits.pool_connections, limits.streams_per_process) / a.tabs,
                "one long poll per stream: more processes past it",
            )
        )
    else:
        per_queue = in_flight_per_user / (setup.shards if routing == "sharded" else 1)
        at = IN_FLIGHT_PER_QUEUE / per_queue if per_queue > 0 else None
        if routing == "instance":
            at = None  # an instance queue's load is one process's, bounded by its streams
        out.append(Limit("120,000 in flight per queue", "SQS Developer Guide, quotas", at))
    if routing == "sharded":
        out.append(_shard_pollers(a, setup, limits, sends_per_user_s, poll_cycle_s))
    if routing == "fifo":
        conversation_rate = a.conversation_size / a.send_interval_s
        met = conversation_rate >= FIFO_TPS_PER_ACTION
        out.append(
            Limit(
                "FIFO 300 sends/s per queue (3,000 batched)",
                "SQS Developer Guide, FIFO quotas",
                1.0 if met else None,
                f"a queue takes its user's conversation: {conversation_rate:.2f} sends/s here",
            )
        )
    out.extend(_hot_partition(a))
    return out


def forwards(processes: int) -> float:
    """Expected forwards of one shard message under `sharded` with P processes: each copy
    lands on a random process until every one has seen it, a coupon collector's P * H(P)
    receives, so P * H(P) - 1 forwards (2.00 for P = 2; a 2-process run measured 1.95).
    The hop cap (8 P) is never reached on average."""
    if processes <= 1:
        return 0.0
    if processes < 10_000:
        harmonic = sum(1 / k for k in range(1, processes + 1))
    else:
        harmonic = math.log(processes) + 0.5772156649 + 1 / (2 * processes)
    return processes * harmonic - 1


def _shard_pollers(
    a: Activity, setup: Setup, limits: ProcessLimits, sends_per_user_s: float, cycle_s: float
) -> Limit:
    """Each process polls each shard once at a time, 10 messages a receive at most; with P > 1
    processes every shard message is forwarded until each process has seen it (`forwards`).
    The first user count (on a x1.25 grid) whose shard traffic exceeds what the P pollers of a
    shard can take."""
    n = 1000.0
    while n < 1e9:
        p = max(1, math.ceil(n * a.tabs / limits.streams(setup.routing)))
        hops = forwards(p)
        per_shard = sends_per_user_s * n * (1 + hops) / setup.shards
        if per_shard > p * 10 / cycle_s:
            return Limit(
                "a shard's pollers: 10 messages a receive, every process sees every message",
                "SQS ReceiveMessage (MaxNumberOfMessages 10); routing/sharded.py forwarding",
                n,
                f"{p} processes: each message forwarded {hops:,.0f} times",
            )
        n *= 1.25
    return Limit("a shard's pollers", "SQS ReceiveMessage (10 a receive)", None)


def _hot_partition(a: Activity) -> list[Limit]:
    """A conversation is one partition: its sends write it, every member's reads read it."""
    rate = a.conversation_size / a.send_interval_s  # messages a second in one conversation
    page = read_units([message_item_bytes()] * (CATCH_UP_FIRST_PAGE + 1), consistent=True)
    reads = rate * a.conversation_size * a.tabs * page
    writes = rate * 2 * 1  # a transactional put: twice one unit
    size_r = math.sqrt(PARTITION_RCU * a.send_interval_s / (a.tabs * page))
    size_w = PARTITION_WCU * a.send_interval_s / 2
    return [
        Limit(
            "DynamoDB 3,000 RCU per partition",
            "DynamoDB Developer Guide, partitions",
            None if reads < PARTITION_RCU else 1.0,
            f"one conversation reads {reads:.1f} RCU/s; met at {size_r:,.0f} participants",
        ),
        Limit(
            "DynamoDB 1,000 WCU per partition",
            "DynamoDB Developer Guide, partitions",
            None if writes < PARTITION_WCU else 1.0,
            f"one conversation writes {writes:.1f} WCU/s; met at {size_w:,.0f} participants",
        ),
    ]


def first_limit(limits: list[Limit]) -> Limit | None:
    met = [lim for lim in limits if lim.users_at is not None]
    return min(met, key=lambda lim: lim.users_at or 0.0) if met else None
