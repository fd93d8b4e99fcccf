"""When a run's users opened their streams: the load generator's start-up, replayed.

`simulate` starts its users as Locust spawns them, and their streams open once each group's
conversation exists, so the opens come in bunches. The `instance` strategy group-commits the
registrations of streams opening together: a quiet 100-user run made 14 registration writes
for its 100 streams, where users started evenly over two seconds (the model's default) make
about 80 (7 December). That is the workload, not the server: `--validate` starts each modelled
user when the run's user of the same index sent its first stream request.
"""

from __future__ import annotations

import re
from pathlib import Path

from semichat.model.overheads import kept_field, run_events

_INDEX = re.compile(r"-u(\d+)$")


def stream_opens(run_dir: Path) -> dict[int, float]:
    """User index (`<run tag>-w<worker>-u<index>`) -> its first stream request, in s since the
    run's start (the `connect` event's time less its setup time); from `client_percentiles.json`
    when the run was kept small with them, else from its events; empty when neither has them."""
    pairs = kept_field(run_dir, "opens")
    if pairs is not None:
        return {int(u): float(t) for u, t in pairs}
    if not (run_dir / "events").is_dir():
        return {}
    events, t0 = run_events(run_dir)
    connects = events[events["type"] == "connect"]
    opens: dict[int, float] = {}
    for user, t, setup_ms in zip(
        connects["user"], connects["t"], connects["setup_ms"].fillna(0.0), strict=True
    ):
        found = _INDEX.search(str(user))
        if found is None:
            continue
        at = float(t) - float(setup_ms) / 1000 - t0
        index = int(found.group(1))
        opens[index] = min(at, opens.get(index, at))
    return opens


def kept_record(run_dir: Path) -> list[list[float]]:
    """What `records.keep` writes under "opens" in `client_percentiles.json`."""
    return [[u, round(t, 4)] for u, t in sorted(stream_opens(run_dir).items())]
