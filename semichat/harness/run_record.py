"""A run's record on disk, read strictly: what `semichat check RUN_DIR` judges.

A run directory holds `events/*.jsonl` (one file per recording process) and, when `simulate` or
a Locust process of this package made it, `params.json`. Any recorded run can be judged: one
from `simulate`, from plain Locust (headless or web UI, which writes `runs/adhoc/<UTC time>/`
and points `runs/adhoc/latest` at it), or from a master with distributed workers.

Reading refuses, with a `RunRecordError` naming the file and line, what would make a verdict
wrong rather than merely incomplete:

- a folder with no events;
- a line that is not JSON: a truncated last line (a writer killed mid-line; `drop_truncated`
  skips it and says so) or a corrupt one inside a file;
- a JSON line that is not one of this harness's events (no known ``type``, or no numeric ``t``);
- events of two runs in one folder: two run markers with different run tags, or users of two
  run tags (user ids are ``<run tag>-w<worker>-u<index>``).

Nothing is written here, and nothing in the record is changed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from semichat.harness.events import EVENT_TYPES, RUN, events_frame

USER_ID = re.compile(r"^(?P<tag>.+)-w\d+-u\d+$")
# How much of a bad line an error message quotes.
QUOTE_CHARS = 60


class RunRecordError(Exception):
    """A run directory that cannot be judged; the message names the fault in one line."""


@dataclass
class RunRecord:
    """A run directory's events and parameters, as read."""

    run_dir: Path
    events: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)
    files: int = 0
    dropped_truncated: int = 0

    @property
    def grace_s(self) -> float:
        return float(self.params.get("grace", 5.0))


def resolve_run_dir(path: str | Path) -> Path:
    """The run directory `path` names: itself, its `latest` run, or the parent of an `events/`."""
    root = Path(path)
    if not root.exists():
        raise RunRecordError(f"{root}: no such folder")
    if not root.is_dir():
        raise RunRecordError(f"{root}: not a folder (give the run directory)")
    if (root / "events").is_dir():
        return root
    latest = root / "latest"
    if latest.is_dir() and (latest / "events").is_dir():
        return latest.resolve()
    if root.name == "events" and any(root.glob("*.jsonl")):
        return root.parent
    raise RunRecordError(f"{root}: no events (no events/ folder, nor a latest run in it)")


def _quote(line: str) -> str:
    text = line if len(line) <= QUOTE_CHARS else line[:QUOTE_CHARS] + "..."
    return json.dumps(text)


def _check_event(record: Any, where: str, line: str) -> None:
    if not isinstance(record, dict):
        raise RunRecordError(f"{where}: not a semichat event (a JSON {type(record).__name__})")
    kind, t = record.get("type"), record.get("t")
    if kind not in EVENT_TYPES:
        raise RunRecordError(f"{where}: not a semichat event (type {kind!r}): {_quote(line)}")
    if not isinstance(t, int | float) or isinstance(t, bool):
        raise RunRecordError(f"{where}: a {kind} event without a numeric time t: {_quote(line)}")


def parse_event_file(path: Path, drop_truncated: bool = False) -> tuple[list[dict[str, Any]], int]:
    """The events of one file and how many truncated last lines were dropped (0 or 1)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RunRecordError(f"{path}: not UTF-8 text, so not an event log") from None
    lines = text.split("\n")
    tail = lines.pop()  # "" when the file ends with a newline, as every complete file does
    records: list[dict[str, Any]] = []
    dropped = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise RunRecordError(f"{path}:{number}: not JSON: {_quote(line)}") from None
        _check_event(record, f"{path}:{number}", line)
        records.append(record)
    if tail.strip():
        number = len(lines) + 1
        try:
            record = json.loads(tail)
        except json.JSONDecodeError:
            if not drop_truncated:
                raise RunRecordError(
                    f"{path}:{number}: truncated JSON line (its writer stopped mid-line); "
                    "--drop-truncated judges the run without it"
                ) from None
            dropped = 1
        else:
            _check_event(record, f"{path}:{number}", tail)
            records.append(record)
    return records, dropped


def _run_tags(records: list[dict[str, Any]]) -> set[str]:
    """The run tags the records name: their run markers' and their users'."""
    tags = set()
    for record in records:
        if record["type"] == RUN:
            tag = (record.get("params") or {}).get("run")
            if isinstance(tag, str):
                tags.add(tag)
        elif isinstance(user := record.get("user"), str) and (m := USER_ID.match(user)):
            tags.add(m["tag"])
    return tags


def check_one_run(per_file: dict[Path, list[dict[str, Any]]]) -> None:
    """Refuse events of two runs in one folder, naming a file of each."""
    owners: dict[str, Path] = {}
    for path, records in per_file.items():
        for tag in sorted(_run_tags(records)):
            owners.setdefault(tag, path)
    if len(owners) > 1:
        (a, pa), (b, pb) = sorted(owners.items())[:2]
        raise RunRecordError(
            f"events from {len(owners)} runs mixed: run {a} ({pa.name}) and run {b} ({pb.name}); "
            "judge each run's own folder"
        )


def read_params(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "params.json"
    if not path.exists():
        return {}
    try:
        params = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunRecordError(f"{path}: not JSON") from None
    if not isinstance(params, dict):
        raise RunRecordError(f"{path}: not a JSON object")
    return params


def read_run(path: str | Path, drop_truncated: bool = False) -> RunRecord:
    """Read a run directory strictly (see the module docstring), or raise RunRecordError."""
    run_dir = resolve_run_dir(path)
    files = sorted((run_dir / "events").glob("*.jsonl"))
    per_file: dict[Path, list[dict[str, Any]]] = {}
    dropped = 0
    for file in files:
        per_file[file], d = parse_event_file(file, drop_truncated)
        dropped += d
    records = [r for rs in per_file.values() for r in rs]
    if not records:
        raise RunRecordError(f"{run_dir / 'events'}: no events recorded (did any user start?)")
    check_one_run(per_file)
    events = events_frame(records).sort_values("t", kind="stable", ignore_index=True)
    return RunRecord(run_dir, events, read_params(run_dir), len(files), dropped)
