"""The model's figures for one configuration, as `semichat model` prints them."""

from __future__ import annotations

from semichat.model.scale import Estimate


def format_estimate(e: Estimate) -> str:
    lines = [
        f"routing {e.routing}, {e.users:,} users (simulated: one process's {e.sample_users:,})",
        f"server processes needed       {e.processes:,}",
        f"queues in existence           {e.queues:,}",
        f"in flight per queue           {e.in_flight_per_queue:,.2f}",
        f"most waiting in one queue     {e.queue_depth_max:,} (in the simulated process)",
        f"long polls open per process   {e.long_polls_per_process:,.0f}",
        "notification latency (ms)     "
        + ", ".join(f"{k} {v:,.0f}" for k, v in e.latency_ms.items()),
        "requests per second by operation:",
    ]
    lines += [f"  {op:34}{rate:>14,.2f}" for op, rate in e.requests_per_s.items()]
    lines.append("a month (dollars, US East list prices; requests and units):")
    lines += [f"  {k:34}{v:>14,.2f}" for k, v in e.monthly.items()]
    lines.append("documented limits (users at which met; '-' not met by user count):")
    for lim in e.limits:
        at = "-" if lim.users_at is None else f"{lim.users_at:,.0f}"
        lines.append(f"  {lim.name:52}{at:>10}  ({lim.source}) {lim.note}")
    first = e.first_limit
    lines.append(
        "first limit met: "
        + (
            "none at any user count"
            if first is None
            else f"{first.name} at {first.users_at:,.0f} users"
        )
    )
    return "\n".join(lines)
