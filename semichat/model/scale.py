"""From one simulated server process to N users: requests, servers, queues, latency, cost.

How: the model simulates one server process's share of the users (at most what one process
holds, and at most `sample_users`: 600 with per-user queues, 2,000 with shared ones) over a
steady window, then scales. Requests the users cause
(sends, fan-out, their streams' polls, history reads, registry heartbeats) are counted per
user and multiplied by N; those a process makes whatever its users (shard and instance
dispatchers' polls) are multiplied by the processes needed. `sharded` with P > 1 processes
adds its forwarding: each shard message visits every process, P * H(P) - 1 forwards on
average (`limits.forwards`; 1.95 measured at P = 2 against 2.00), each counted as a send, a
receive and a delete (an upper bound: receives and deletes take up to 10; the 2-process run
took 9 a receive). Latency is the sample's: a process is never given more users than it
holds, so its queueing is the sample's. `tests/test_capacity_model.py`
checks the scaling: twice the sample gives twice the user-caused requests within 5 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from semichat.aws.capacity import read_units
from semichat.harness.cost import Prices
from semichat.model.chat import INITIAL_HISTORY, message_item_bytes
from semichat.model.inputs import PER_USER, Activity, ProcessLimits, Setup
from semichat.model.limits import Limit, first_limit, forwards, strategy_limits
from semichat.model.managed import managed_monthly
from semichat.model.profile import LatencyProfile
from semichat.model.simulation import SimulationResult, Window, simulate
from semichat.model.world import PROCESS, USER

SECONDS_PER_MONTH = 30 * 24 * 3600
# A process is given work up to this share of one core (headroom for bursts).
CPU_TARGET = 0.7


@dataclass(frozen=True)
class Estimate:
    routing: str
    users: int
    sample_users: int
    processes: int
    requests_per_s: dict[str, float]
    queues: int
    in_flight_per_queue: float
    long_polls_per_process: float
    latency_ms: dict[str, float]
    monthly: dict[str, float]
    per_queue_send_per_s: float
    queue_depth_max: int
    limits: list[Limit] = field(default_factory=list)

    @property
    def first_limit(self) -> Limit | None:
        return first_limit(self.limits)


def steady_window(activity: Activity, setup: Setup) -> Window:
    """Long enough for several sends per user and several poll rounds after the start-up."""
    warm = 2.0 + 1.5 * activity.send_interval_s + setup.wait_seconds
    length = max(4 * activity.send_interval_s, 3 * setup.wait_seconds, 60.0)
    return Window(duration_s=warm + length, drain_s=0.0, measure_from_s=warm, close_at_end=False)


def sample_run(
    activity: Activity,
    setup: Setup,
    profile: LatencyProfile,
    limits: ProcessLimits,
    sample_users: int | None = None,
    seed: int = 1,
) -> SimulationResult:
    per_process = limits.streams(setup.routing) // activity.tabs
    if sample_users is None:
        # Shared queues batch more as a process's traffic grows: a larger sample (2,000, about
        # 3 s to simulate) keeps the receives' linear scaling closer (an upper bound still).
        sample_users = 600 if setup.routing in PER_USER else 2000
    n = max(activity.conversation_size, min(activity.users, per_process, sample_users))
    n -= n % activity.conversation_size
    sample = Activity(**{**activity.__dict__, "users": n})
    return simulate(sample, setup, profile, steady_window(sample, setup), seed)


def estimate(
    activity: Activity,
    setup: Setup,
    profile: LatencyProfile,
    limits: ProcessLimits | None = None,
    prices: Prices | None = None,
    sample: SimulationResult | None = None,
) -> Estimate:
    """The model's figures for `activity.users` users (a `sample` of the same activity and
    setup may be given, to share one simulation among sizes)."""
    activity.check()
    limits = limits or ProcessLimits()
    prices = prices or Prices()
    sample = sample or sample_run(activity, setup, profile, limits)
    w, t = sample.window, sample.tally
    span = w.end_s - w.measure_from_s
    n, users = sample.activity.users, activity.users
    per_user = {k: v / span / n for k, v in t.measured(USER).items()}
    per_process = {k: v / span for k, v in t.measured(PROCESS).items()}
    streams = users * activity.tabs
    processes = max(1, math.ceil(streams / limits.streams(setup.routing)))
    rates = _rates(per_user, per_process, users, processes)
    processes = max(processes, math.ceil(_cpu_processes(rates, limits)))
    rates = _rates(per_user, per_process, users, processes)
    if setup.routing == "sharded" and processes > 1:
        _forwarding(rates, processes)
    queues = (
        users
        if setup.routing in PER_USER
        else (setup.shards if setup.routing == "sharded" else processes)
    )
    sends = rates.get("sqs:SendMessage", 0.0)
    hold_s = (profile.operations["sqs:ReceiveMessage.wake"].quantile(50) + 20) / 1000
    polls = (
        streams / processes
        if setup.routing in PER_USER
        else (setup.shards if setup.routing == "sharded" else 1)
    )
    units = (t.read_units - t.baseline_units[0], t.write_units - t.baseline_units[1])
    registry = (
        t.registry_units[0] - t.baseline_registry[0],
        t.registry_units[1] - t.baseline_registry[1],
    )
    monthly = _monthly(
        activity, setup, rates, per_process, processes, units, registry, span, n, prices
    )
    in_flight = sends / max(1, queues) * hold_s
    found = strategy_limits(
        activity,
        setup,
        limits,
        per_user.get("sqs:SendMessage", 0.0),
        in_flight * max(1, queues) / users,
        hold_s + profile.operations["sqs:SendMessage"].quantile(50) / 1000,
    )
    return Estimate(
        routing=setup.routing,
        users=users,
        sample_users=n,
        processes=processes,
        requests_per_s=dict(sorted(rates.items())),
        queues=queues,
        in_flight_per_queue=in_flight,
        long_polls_per_process=polls,
        latency_ms=_latency(sample),
        monthly=monthly,
        per_queue_send_per_s=sends / max(1, queues),
        queue_depth_max=t.depth_max,
        limits=found,
    )


def _rates(
    per_user: dict[str, float], per_process: dict[str, float], users: int, processes: int
) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in per_user.items():
        out[k] = out.get(k, 0.0) + v * users
    for k, v in per_process.items():
        out[k] = out.get(k, 0.0) + v * processes
    return {k: v for k, v in out.items() if v > 0}


def _cpu_processes(rates: dict[str, float], limits: ProcessLimits) -> float:
    return sum(rates.values()) * limits.cpu_ms_per_request / 1000 / CPU_TARGET


def _forwarding(rates: dict[str, float], processes: int) -> None:
    hops = forwards(processes)
    shard_messages = rates.get("sqs:SendMessage", 0.0)
    for op in ("sqs:SendMessage", "sqs:ReceiveMessage.messages", "sqs:DeleteMessageBatch"):
        rates[op] = rates.get(op, 0.0) + shard_messages * hops


def _latency(sample: SimulationResult) -> dict[str, float]:
    t = sample.tally
    out = {}
    for name, values in (("wire", t.wire_s[t.wire_from :]), ("view", t.view_s[t.view_from :])):
        arr = np.array(values or [np.nan]) * 1000
        out[f"{name}_p50"] = float(np.nanpercentile(arr, 50))
        out[f"{name}_p99"] = float(np.nanpercentile(arr, 99))
    return out


def _monthly(
    a: Activity,
    setup: Setup,
    rates: dict[str, float],
    per_process: dict[str, float],
    processes: int,
    units: tuple[float, float],
    registry: tuple[float, float],
    span: float,
    n: int,
    p: Prices,
) -> dict[str, float]:
    """Users connected `connected_hours_per_day`; the processes run around the clock."""
    connected_s = a.users * a.connected_hours_per_day * 3600 * 30
    process_rate = {k: v * processes for k, v in per_process.items()}
    user_rate = {k: v - process_rate.get(k, 0.0) for k, v in rates.items()}
    count = {k: v / a.users * connected_s for k, v in user_rate.items()}
    for k, v in process_rate.items():
        count[k] = count.get(k, 0.0) + v * SECONDS_PER_MONTH
    connects = a.users * 30 * (1 + a.connected_hours_per_day * a.reconnects_per_hour)
    history = read_units([message_item_bytes()] * (INITIAL_HISTORY + 1), consistent=True)
    reads = units[0] / span / n * connected_s + connects * a.tabs * history
    writes = units[1] / span / n * connected_s
    if setup.routing == "instance":
        writes += connects * 2  # a registration and its removal
    sqs = sum(v for k, v in count.items() if k.startswith("sqs:"))
    price = p.sqs_fifo if setup.routing == "fifo" else p.sqs_standard
    sqs_dollars = max(0.0, sqs - p.sqs_free_requests) / 1e6 * price
    dynamo = reads / 1e6 * p.dynamodb_read + writes / 1e6 * p.dynamodb_write
    # What a managed alternative keeps: the messages and history, not the registry.
    registry_reads = registry[0] / span / n * connected_s
    registry_writes = registry[1] / span / n * connected_s + (
        connects * 2 if setup.routing == "instance" else 0
    )
    kept = (
        dynamo - registry_reads / 1e6 * p.dynamodb_read - registry_writes / 1e6 * p.dynamodb_write
    )
    sends = count.get("dynamodb:TransactWriteItems", 0.0)
    managed = managed_monthly(
        messages_in=sends,
        notifications_out=sends * a.conversation_size * a.tabs,
        connects=connects * a.tabs,
        connection_minutes=connected_s / 60 * a.tabs,
    )
    return {
        "sqs_requests": sqs,
        "sqs_dollars": sqs_dollars,
        "dynamodb_read_units": reads,
        "dynamodb_write_units": writes,
        "dynamodb_dollars": dynamo,
        "dollars": sqs_dollars + dynamo,
        "dollars_per_user": (sqs_dollars + dynamo) / a.users,
        **{f"{k}_dollars": v + kept for k, v in managed.items()},
    }
