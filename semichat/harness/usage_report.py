"""A run's backend usage by operation, from the server's `/metrics` before and after.

Requests, errors and DynamoDB units per "service:Operation", summed over the server's lives
(a crashed process's counters restart at zero), and latency buckets the same way, with p50 and
p99 read from them (`semichat/aws/usage.py`). This is what `results.json` carries as `backend`,
and what the capacity model is validated and priced against.
"""

from __future__ import annotations

from typing import Any

from semichat.aws.usage import percentile_ms

_COUNTED = ("requests", "billed", "errors", "read_units", "write_units")


def _delta(first: dict[str, Any], last: dict[str, Any]) -> dict[str, float]:
    out = {k: v - first.get(k, 0) for k, v in last.items() if isinstance(v, int | float)}
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items() if v}


def _add(total: dict[str, Any], part: dict[str, Any]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v


def backend_usage(lives: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any] | None:
    """None when the server reported no backend usage (one older than this count)."""
    if not any("backend" in end for _, end in lives):
        return None
    out: dict[str, Any] = {name: {} for name in _COUNTED}
    latency: dict[str, dict[str, int]] = {}
    for start, end in lives:
        first, last = start.get("backend", {}), end.get("backend", {})
        for name in _COUNTED:
            _add(out[name], _delta(first.get(name, {}), last.get(name, {})))
        for key, buckets in last.get("latency_ms", {}).items():
            was = first.get("latency_ms", {}).get(key, {})
            _add(latency.setdefault(key, {}), _delta(was, buckets))
    out["latency_ms"] = {
        key: {
            "p50": _round(percentile_ms(b, 50)),
            "p99": _round(percentile_ms(b, 99)),
            "buckets": b,
        }
        for key, b in sorted(latency.items())
        if b  # operations only before the run (the server's own start) have no latency in it
    }
    cpu = [end["cpu_s"] - start.get("cpu_s", 0.0) for start, end in lives if "cpu_s" in end]
    out["server_cpu_s"] = round(sum(cpu), 3) if cpu else None
    # Time runnable but waiting for a core, and the turns run on one (Linux schedstat; None
    # where not recorded): the capacity model's CPU share (`semichat/model/cpu.py`).
    for key in ("cpu_wait_s", "cpu_turns"):
        got = [end[key] - start.get(key, 0) for start, end in lives if key in end]
        out[f"server_{key}"] = round(sum(got), 3) if got else None
    out["sqs_billed_requests"] = sum(out["billed"].values())
    out["dynamodb_read_units"] = round(sum(out["read_units"].values()), 3)
    out["dynamodb_write_units"] = round(sum(out["write_units"].values()), 3)
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
