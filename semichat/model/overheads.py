"""What a run's clients waited for beyond the backend calls inside each request.

A send's client time (`ackedAt - t` in the run's events) and a history read's (Locust's own
statistics, `locust_stats.csv`, rounded to two digits above 100 ms) hold the backend calls the
server counted and timed, plus what no backend call times: the client's own work, the network,
and the server's handling between and around calls. On a 2-core machine running Locust, two
emulator processes and the server (load average about 8), that part is most of a request's
time. The model takes it as an input measured per run: at each percentile, the client's time
minus the modelled backend time of the same request (never below zero).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semichat.model.profile import (
    HTTP_HISTORY,
    HTTP_SEND,
    Distribution,
    LatencyProfile,
)

if TYPE_CHECKING:
    import pandas as pd

PERCENTILES = (5, 25, 50, 75, 90, 95, 99)
_LOCUST_COLUMNS = {"50": "50%", "75": "75%", "90": "90%", "95": "95%", "99": "99%"}


CLIENT_FILE = "client_percentiles.json"


def kept_field(run_dir: Path, key: str) -> Any:
    """`key` of a run kept small (`CLIENT_FILE`, `records.keep`); None without it."""
    kept = run_dir / CLIENT_FILE
    return json.loads(kept.read_text()).get(key) if kept.is_file() else None


def run_events(run_dir: Path) -> tuple[pd.DataFrame, float]:
    """A run's events and its start (its first `run` marker, else its first event)."""
    from semichat.harness.run_record import read_run

    events = read_run(run_dir).events
    starts = events.loc[events["type"] == "run", "t"]
    return events, float(starts.min()) if len(starts) else float(events["t"].min())


def _sends(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Each acknowledged send's start (s since the run's start) and time as its client saw it."""
    events, t0 = run_events(run_dir)
    sends = events[(events["type"] == "send") & events["ackedAt"].notna()]
    took = ((sends["ackedAt"] - sends["t"]) * 1000).to_numpy(dtype=float)
    return (sends["t"] - t0).to_numpy(dtype=float), took


def send_times_ms(run_dir: Path) -> np.ndarray:
    return _sends(run_dir)[1]


def slowness_trace(run_dir: Path) -> tuple[list[float], list[float]]:
    """The run's slowness over time: each send's start and the rank (0..1) of its client time
    among all the run's sends. On a shared machine requests are slow together (stalls of the
    whole machine), which independent draws do not reproduce: replayed, they are."""
    kept = run_dir / CLIENT_FILE
    if kept.is_file():
        pairs = json.loads(kept.read_text()).get("trace", [])
        return [float(t) for t, _ in pairs], [float(u) for _, u in pairs]
    if not (run_dir / "events").is_dir():
        return [], []
    starts, took = _sends(run_dir)
    order = np.argsort(starts)
    ranks = (np.argsort(np.argsort(took)) + 0.5) / max(1, len(took))
    return [float(starts[i]) for i in order], [float(ranks[i]) for i in order]


def history_percentiles_ms(run_dir: Path) -> dict[str, float]:
    """Locust's percentiles of `/api/chat/history` (its rounding included)."""
    path = run_dir / "locust_stats.csv"
    if not path.is_file():
        return {}
    with path.open() as f:
        for row in csv.DictReader(f):
            if row.get("Name") == "/api/chat/history":
                return {q: float(row[c]) for q, c in _LOCUST_COLUMNS.items() if row.get(c)}
    return {}


def client_percentiles(run_dir: Path) -> dict[str, Any]:
    """Sends' and history reads' client times by percentile: from the run's events and
    Locust's statistics, or from `client_percentiles.json` (what `records.keep` keeps)."""
    kept = run_dir / CLIENT_FILE
    if kept.is_file():
        return dict(json.loads(kept.read_text()))
    sends = send_times_ms(run_dir) if (run_dir / "events").is_dir() else np.array([])
    times, ranks = slowness_trace(run_dir)
    return {
        "send": {str(q): float(np.percentile(sends, q)) for q in PERCENTILES} if len(sends) else {},
        "history": history_percentiles_ms(run_dir),
        "trace": [[round(t, 3), round(u, 4)] for t, u in zip(times, ranks, strict=True)],
    }


def _difference(client: dict[str, float], backend: Distribution) -> Distribution | None:
    points = {q: max(0.0, v - backend.quantile(float(q))) for q, v in client.items()}
    return Distribution.from_percentiles(points) if points else None


def with_overheads(
    profile: LatencyProfile, run_dir: Path, modelled_send_s: Sequence[float]
) -> LatencyProfile:
    """`profile` with the run's `http:` overheads added (those it already has are kept)."""
    ops = dict(profile.operations)
    client = client_percentiles(run_dir)
    if HTTP_SEND not in ops and client["send"] and len(modelled_send_s):
        modelled = np.array(modelled_send_s) * 1000
        backend = Distribution.from_percentiles(
            {str(q): float(np.percentile(modelled, q)) for q in PERCENTILES}
        )
        found = _difference(client["send"], backend)
        if found is not None:
            ops[HTTP_SEND] = found
    if HTTP_HISTORY not in ops and client["history"] and "dynamodb:Query" in ops:
        found = _difference(client["history"], ops["dynamodb:Query"])
        if found is not None:
            ops[HTTP_HISTORY] = found
    return LatencyProfile(profile.source, ops)
