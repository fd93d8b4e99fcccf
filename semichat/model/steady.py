"""Latency after a run's warm-up: what the model is judged on.

A run starts cold. `simulate` starts every user within about two seconds; each creates its
queue (per-user strategies) and reads its history at once, while the emulators answer their
first requests. In a quiet 100-user `per_user_queue` run (7 December) the slowest 1 % of the
run's 4,199 notifications all came in its first 1.4 s: wire p99 150 ms over the whole run,
59 ms for sends started 2 s or more after its start. The model draws each operation's latency
from the run's distribution as a whole, with no cold start, and what it is for is the steady
state at scale. So latency is compared on sends started after a warm-up, the same on both
sides: every user spawned, then one send interval more (by then each has sent once). The rule
comes from the run's start-up, not from the ratios; the whole run's figures are printed too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from semichat.harness.checker.log import Level
from semichat.model.overheads import kept_field, run_events

LEVELS: tuple[Level, ...] = ("wire", "user_view")
QUANTILES = (50, 99)


def warmup_s(spawn_s: float, send_interval_s: float) -> float:
    return spawn_s + send_interval_s


def percentiles_ms(
    latency_s: Sequence[float], sent_at: Sequence[float], from_s: float
) -> dict[str, float]:
    """The model's side: percentiles of the samples whose send started at `from_s` or later."""
    kept = np.asarray(latency_s)[np.asarray(sent_at) >= from_s] * 1000
    if not len(kept):
        return {}
    return {str(q): float(np.percentile(kept, q)) for q in QUANTILES}


def run_percentiles_ms(run_dir: Path, from_s: float) -> dict[str, dict[str, float]]:
    """The run's side, per level, from its events (the checker's pairs: first receipt minus
    send start, delivered pairs only, as its results count them); from `client_percentiles.json`
    when the run was kept small (`records.keep`) with the same warm-up. Empty when neither has
    it (a run kept before the warm-up was counted)."""
    steady = kept_field(run_dir, "steady")
    if steady and abs(float(steady.get("from_s", -1)) - from_s) < 1e-9:
        return {level: steady[level] for level in LEVELS if level in steady}
    if not (run_dir / "events").is_dir():
        return {}
    from semichat.harness.checker import check_with_pairs

    events, t0 = run_events(run_dir)
    tables = check_with_pairs(events)[1]
    out: dict[str, dict[str, float]] = {}
    for level in LEVELS:
        table = tables[level]
        got = table[table["expected"] & (table["deliveries"] > 0)]
        latency = got["latency_ms"].to_numpy(dtype=float) / 1000
        sent = got["sent_at"].to_numpy(dtype=float) - t0
        out[level] = percentiles_ms(latency, sent, from_s)
    return out


def kept_record(run_dir: Path, from_s: float) -> dict[str, object]:
    """What `records.keep` writes under "steady" in `client_percentiles.json`."""
    return {"from_s": from_s, **run_percentiles_ms(run_dir, from_s)}
