"""`/metrics` of a server that may be several processes on one port.

Behind `semichat serve --processes N` every process keeps its own counters, and `/metrics`
answers from whichever process the kernel gives the connection (SO_REUSEPORT spreads them by
the connection's addresses and ports). So a reader opens a fresh connection per request and
asks again until it has seen N distinct `pid`s, then adds them up: counters and gauges are
sums over processes; `time` is the latest; `processes` keeps each process's own answer. A
process that never answers within the timeout is a SimulationError-worthy failure for the
caller: a sum over fewer processes than there are would under-count without saying so.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

# Per-process reads are random: with N processes, about N * H(N) reads see them all.
FLEET_TIMEOUT_S = 10.0


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


class IncompleteMetrics(OSError):
    """Not every server process answered `/metrics` in time."""


def combine(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """One `/metrics` document from several processes' answers: numbers summed (`time`: the
    latest), other values from the first; `pids` and `processes` say whose they are."""
    combined = _merge(answers)
    combined["pids"] = sorted(a["pid"] for a in answers)
    combined["processes"] = {str(a["pid"]): a for a in answers}
    combined.pop("pid", None)
    return combined


def _merge(values: list[Any]) -> Any:
    first = values[0]
    if isinstance(first, dict):
        keys = dict.fromkeys(k for v in values if isinstance(v, dict) for k in v)
        merged = {k: _merge([v[k] for v in values if isinstance(v, dict) and k in v]) for k in keys}
        if "time" in merged and all(isinstance(v.get("time"), int | float) for v in values):
            merged["time"] = max(v["time"] for v in values)
        return merged
    if isinstance(first, bool) or not isinstance(first, int | float):
        return first
    return sum(v for v in values if isinstance(v, int | float) and not isinstance(v, bool))


def fleet_metrics(target: str, processes: int, timeout: float = FLEET_TIMEOUT_S) -> dict[str, Any]:
    """`/metrics` summed over `processes` server processes behind `target` (one process: its
    answer as it is). Raises IncompleteMetrics if some process was not reached in time."""
    if processes <= 1:
        return get_json(f"{target}/metrics")  # type: ignore[no-any-return]
    seen: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < processes:
        answer = get_json(f"{target}/metrics", timeout=2)  # a new connection each time
        seen[int(answer["pid"])] = answer
        if len(seen) < processes and time.monotonic() >= deadline:
            raise IncompleteMetrics(
                f"{len(seen)} of {processes} server processes answered /metrics in {timeout} s"
            )
    return combine(list(seen.values()))
