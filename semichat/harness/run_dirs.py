"""Where runs are recorded: `<out>/<name>/<UTC time>/`, with `<out>/<name>/latest` pointing at
the newest (`semichat simulate` names them after the scenario, plain Locust `adhoc`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path


def new_run_directory(out: Path, scenario: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    path = out / scenario / stamp
    suffix = 0
    while path.exists():
        suffix += 1
        path = out / scenario / f"{stamp}-{suffix}"
    (path / "events").mkdir(parents=True)
    latest = out / scenario / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(path.name)
    return path
