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
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from semichat.model.profile import (
    HTTP_HISTORY,
    HTTP_SEND,
    Distribution,
    LatencyProfile,
)

PERCENTILES = (5, 25, 50, 75, 90, 95, 99)
_LOCUST_COLUMNS = {"50": "50%", "75": "75%", "90": "90%", "95": "95%", "99": "99%"}


def send_times_ms(run_dir: Path) -> np.ndarray:
    """Each acknowledged send's time as its client saw it."""
    from semichat.harness.run_record import read_run

    events = read_run(run_dir).events
    sends = events[(events["type"] == "send") & events["ackedAt"].notna()]
    return ((sends["ackedAt"] - sends["t"]) * 1000).to_numpy(dtype=float)


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


def _difference(client: dict[str, float], backend: Distribution) -> Distribution | None:
    points = {q: max(0.0, v - backend.percentile(float(q))) for q, v in client.items()}
    return Distribution.from_percentiles(points) if points else None


def with_overheads(
    profile: LatencyProfile, run_dir: Path, modelled_send_s: Sequence[float]
) -> LatencyProfile:
    """`profile` with the run's `http:` overheads added (those it already has are kept)."""
    ops = dict(profile.operations)
    sends = send_times_ms(run_dir)
    if HTTP_SEND not in ops and len(sends) and len(modelled_send_s):
        client = {str(q): float(np.percentile(sends, q)) for q in PERCENTILES}
        modelled = np.array(modelled_send_s) * 1000
        backend = Distribution.from_percentiles(
            {str(q): float(np.percentile(modelled, q)) for q in PERCENTILES}
        )
        found = _difference(client, backend)
        if found is not None:
            ops[HTTP_SEND] = found
    history = history_percentiles_ms(run_dir)
    if HTTP_HISTORY not in ops and history and "dynamodb:Query" in ops:
        found = _difference(history, ops["dynamodb:Query"])
        if found is not None:
            ops[HTTP_HISTORY] = found
    return LatencyProfile(profile.source, ops)
