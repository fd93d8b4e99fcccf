"""The model over many sizes and every strategy, as frames for the capacity notebook."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from semichat.model.inputs import STRATEGIES, Activity, ProcessLimits, Setup
from semichat.model.profile import LatencyProfile
from semichat.model.scale import Estimate, estimate, sample_run
from semichat.model.validation import validate


def estimates(
    activity: Activity,
    users: Sequence[int],
    profile: LatencyProfile,
    strategies: Iterable[str] = STRATEGIES,
    limits: ProcessLimits | None = None,
) -> list[Estimate]:
    """Every strategy at every size: one simulated process's sample per strategy, shared by
    the sizes it covers (a size below the sample is simulated whole)."""
    limits = limits or ProcessLimits()
    out = []
    for routing in strategies:
        setup = Setup(routing=routing)
        largest = replace(activity, users=max(users))
        shared = sample_run(largest, setup, profile, limits)
        for n in users:
            sized = replace(activity, users=n)
            own = None if n < shared.activity.users else shared
            out.append(estimate(sized, setup, profile, limits, sample=own))
    return out


def frame(found: list[Estimate]) -> pd.DataFrame:
    rows = []
    for e in found:
        first = e.first_limit
        rows.append(
            {
                "routing": e.routing,
                "users": e.users,
                "processes": e.processes,
                "queues": e.queues,
                "long_polls_per_process": e.long_polls_per_process,
                "sqs_requests_per_s": sum(
                    v for k, v in e.requests_per_s.items() if k.startswith("sqs:")
                ),
                "dynamodb_requests_per_s": sum(
                    v for k, v in e.requests_per_s.items() if k.startswith("dynamodb:")
                ),
                **e.latency_ms,
                **e.monthly,
                "first_limit": None if first is None else first.name,
                "first_limit_users": None if first is None else first.users_at,
            }
        )
    return pd.DataFrame(rows)


def first_limits(found: list[Estimate]) -> pd.DataFrame:
    """Per strategy, the first documented limit met as users grow, and every limit's note."""
    rows = []
    for e in {e.routing: e for e in found}.values():
        for lim in e.limits:
            rows.append(
                {
                    "routing": e.routing,
                    "limit": lim.name,
                    "users_at": lim.users_at,
                    "first": lim is e.first_limit,
                    "source": lim.source,
                    "note": lim.note,
                }
            )
    return pd.DataFrame(rows)


def validation_frame(run_dirs: Iterable[Path], replications: int = 2) -> pd.DataFrame:
    """`semichat model --validate` of each run, one row per (run, figure)."""
    rows = []
    for run in run_dirs:
        for r in validate(run, replications=replications):
            rows.append(
                {
                    "run": Path(run).name,
                    "figure": r.figure,
                    "model": r.model,
                    "measured": r.measured,
                    "ratio": r.ratio,
                }
            )
    return pd.DataFrame(rows)
