"""Latency profiles: per "service:Operation", percentiles in ms, and draws from them.

The format is the one `semichat calibrate` and `--faults latency=FILE` use, read and checked by
the same code (`semichat/aws/latency.py`: its refusals, its inverse-CDF draws):

    {"format": "semichat-latency-profile/1", "source": "...",
     "operations": {"sqs:SendMessage": {"percentiles_ms": {"50": 18.0, "99": 45.0}}, ...}}

`sqs:ReceiveMessage.wake` is a long poll's wake-up after a message arrives. Optional `http:`
entries (`HTTP_SEND`, `HTTP_HISTORY`) give a client's request time beyond the backend calls
inside it (the client, the network, the server's own handling), measured from a run
(`semichat/model/overheads.py`); without them it is taken as nothing. Without a profile
the model takes one from a run's `results.json` (`backend.latency_ms`, counted by the server
per operation, `semichat/aws/usage.py`), whose buckets give every percentile.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semichat.aws.latency import FORMAT, Distribution, LatencyProfileError, parse_profile
from semichat.aws.usage import percentile_ms
from semichat.model.inputs import ModelInputError

HTTP_SEND = "http:POST /api/chat/send"
HTTP_HISTORY = "http:GET /api/chat/history"
_RUN_PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9)


# The default profile: the embedded backend's five 100-user runs, merged (docs/capacity.md).
DEFAULT_PROFILE = Path(__file__).resolve().parent / "profiles" / "embedded.json"


@dataclass(frozen=True)
class LatencyProfile:
    source: str
    operations: Mapping[str, Distribution]

    def require(self, operations: Iterable[str]) -> None:
        missing = sorted(set(operations) - set(self.operations))
        if missing:
            raise ModelInputError(
                f"latency profile {self.source!r} lacks operation {missing[0]}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )

    def draw_s(self, operation: str, rng: random.Random, u: float | None = None) -> float:
        return self.operations[operation].draw(rng, u) / 1000

    def overhead_s(self, request: str, rng: random.Random, u: float | None = None) -> float:
        """An HTTP request's time beyond its backend calls (`http:` entries), 0 without one."""
        found = self.operations.get(request)
        return 0.0 if found is None else found.draw(rng, u) / 1000


def load_profile(path: str | Path) -> LatencyProfile:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ModelInputError(f"latency profile {path}: {exc}") from None
    try:
        # Beyond the replay's operations: a client's HTTP overheads, the long polls the
        # server's counters tell apart (`.messages`, `.empty`: `aws/usage.py`), and the
        # marks' group-commit cycle (`aws/batches.py`).
        parsed = parse_profile(
            doc, str(path), also=("http:", "sqs:ReceiveMessage.", "dynamodb:BatchWriteItem.")
        )
    except LatencyProfileError as exc:
        raise ModelInputError(str(exc)) from None
    return LatencyProfile(parsed.source, dict(parsed.operations))


def profile_from_results(results: Mapping[str, Any], source: str) -> LatencyProfile:
    """Per-operation latency from a run's counted buckets. A long poll's wake-up is measured by
    the server from each received message's `SentTimestamp` (`aws/usage.py`); a run made
    before it was counted takes a DeleteMessage's round trip instead (an assumption)."""
    latency = (results.get("backend") or {}).get("latency_ms") or {}
    if not latency:
        raise ModelInputError(f"run {source} has no per-operation latency (a server too old)")
    ops = {}
    for name, body in latency.items():
        buckets = body.get("buckets") or {}
        if not any(buckets.values()):
            continue
        points = {str(q): percentile_ms(buckets, q) for q in _RUN_PERCENTILES}
        kept = {q: v for q, v in points.items() if v}
        if kept:
            ops[name] = Distribution.from_percentiles(kept)
    wake = ops.get("sqs:DeleteMessage") or ops.get("sqs:DeleteMessageBatch")
    if wake is not None:
        ops.setdefault("sqs:ReceiveMessage.wake", wake)
    return LatencyProfile(source, ops)


def completed(profile: LatencyProfile, fallback: LatencyProfile) -> LatencyProfile:
    """`profile` with the operations it lacks taken from `fallback`: for a run that never made
    them (an idle run's sends), so that the model can be set up; they are not drawn from."""
    ops = {**fallback.operations, **profile.operations}
    return LatencyProfile(f"{profile.source} (missing operations: {fallback.source})", ops)


def merged_results(results: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Several runs' latency buckets added up, per operation (one profile from many runs)."""
    merged: dict[str, dict[str, int]] = {}
    for r in results:
        for name, body in ((r.get("backend") or {}).get("latency_ms") or {}).items():
            into = merged.setdefault(name, {})
            for edge, n in (body.get("buckets") or {}).items():
                into[edge] = into.get(edge, 0) + int(n)
    return {"backend": {"latency_ms": {k: {"buckets": v} for k, v in merged.items()}}}


def as_document(
    profile: LatencyProfile, percentiles: Iterable[str] = ("50", "90", "99")
) -> dict[str, Any]:
    """The profile in the file format."""
    return {
        "format": FORMAT,
        "source": profile.source,
        "operations": {
            name: {"percentiles_ms": {q: round(d.quantile(float(q)), 2) for q in percentiles}}
            for name, d in sorted(profile.operations.items())
        },
    }
