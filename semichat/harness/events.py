"""The client event log: what the load generator's users recorded, one JSON object per line.

Every process that plays users (each Locust process, each browser driver) appends to its own
``*.jsonl`` file under a run's ``events/`` directory, so writers never share a file. The delivery
checker (:mod:`semichat.harness.checker`) reads only these files: it decides from what clients saw,
never from what the server says about itself.

Every event has ``type``, ``t`` (wall-clock unix seconds, float) and, except run markers, ``user``.
The event types and their fields are the TypedDicts below.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

import pandas as pd

SEND = "send"
CONNECT = "connect"
DISCONNECT = "disconnect"
NOTIFICATION = "notification"
VIEW = "view"
RUN = "run"
EVENT_TYPES = (SEND, CONNECT, DISCONNECT, NOTIFICATION, VIEW, RUN)

# Send outcomes. "unknown" means the client cannot tell whether the message exists
# (timeout, 5xx, connection error): the checker calls its deliveries "recovered".
OK = "ok"
FAILED = "failed"
UNKNOWN = "unknown"
OUTCOMES = (OK, FAILED, UNKNOWN)

# Run marker phases; the checker takes the run's end from the last "end" marker.
PHASE_START = "start"
PHASE_DRAIN = "drain"
PHASE_END = "end"

Outcome = Literal["ok", "failed", "unknown"]


class SendEvent(TypedDict):
    """One logical send (retries included); ``t`` is when the first attempt started."""

    type: Literal["send"]
    t: float
    user: str
    conversationId: str
    idempotencyKey: str
    recipients: list[str]  # every participant, the sender included
    outcome: Outcome
    status: int | None
    messageId: str | None
    ackedAt: float | None  # when the 2xx response arrived, if outcome is "ok"
    attempts: int


class ConnectEvent(TypedDict):
    type: Literal["connect"]
    t: float
    user: str
    stream: str  # unique per SSE connection
    # The tab or page holding the stream ("<user>/tab<n>"); the user view judges each client
    # apart. Without it the event stands for the user's one client (the user id).
    client: NotRequired[str]
    # From the stream's request to its `ready` event, in ms: when the stream was asked for.
    setup_ms: NotRequired[float]


class DisconnectEvent(TypedDict):
    type: Literal["disconnect"]
    t: float
    user: str
    stream: str
    reason: str
    client: NotRequired[str]


class NotificationEvent(TypedDict):
    """One raw SSE event as it came off the wire; ``t`` is when it was received."""

    type: Literal["notification"]
    t: float
    user: str
    stream: str
    client: NotRequired[str]
    eventId: str
    messageId: str
    conversationId: str
    # Optional: if the server echoes the send's idempotency key, the checker can match a
    # delivery to a send whose outcome was "unknown" (and therefore has no messageId).
    idempotencyKey: NotRequired[str]


class ViewEvent(TypedDict):
    """A message first appearing in one client's view, after de-duplication and history refetch."""

    type: Literal["view"]
    t: float
    user: str
    # The user's tab, page or session; missing: the user's one client (old runs).
    client: NotRequired[str]
    conversationId: str
    messageId: str
    # The send's key, parsed from the message's text: it bridges messageId to a send whose
    # outcome was "unknown", so that every delivery of the message counts as recovered.
    idempotencyKey: NotRequired[str]


class RunEvent(TypedDict):
    type: Literal["run"]
    t: float
    phase: Literal["start", "drain", "end"]
    params: NotRequired[dict[str, Any]]


Event = SendEvent | ConnectEvent | DisconnectEvent | NotificationEvent | ViewEvent | RunEvent

# The columns of the DataFrame read_events returns; a field an event type lacks is missing
# (NaN/None). Fields outside this list are dropped on reading.
FLOAT_COLUMNS = ("t", "ackedAt", "status", "attempts", "setup_ms")
STRING_COLUMNS = (
    "type",
    "user",
    "stream",
    "conversationId",
    "idempotencyKey",
    "outcome",
    "messageId",
    "eventId",
    "client",
    "reason",
    "phase",
)
OBJECT_COLUMNS = ("recipients", "params")
COLUMNS = ("type", "t", *STRING_COLUMNS[1:], *FLOAT_COLUMNS[1:], *OBJECT_COLUMNS)


def append_events(path: str | Path, events: Iterable[Mapping[str, Any]]) -> int:
    """Append events to a JSON-lines file (created if missing); returns how many were written.

    One process should own one file: appends from several processes to one file may interleave.
    """
    lines = [json.dumps(event, separators=(",", ":")) + "\n" for event in events]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.writelines(lines)
    return len(lines)


def event_files(paths_or_dir: str | Path | Iterable[str | Path]) -> list[Path]:
    """The ``*.jsonl`` files a run directory, an ``events/`` directory, or a list of paths names."""
    if isinstance(paths_or_dir, str | Path):
        root = Path(paths_or_dir)
        if root.is_file():
            return [root]
        if (root / "events").is_dir():
            root = root / "events"
        return sorted(root.glob("*.jsonl"))
    return [Path(p) for p in paths_or_dir]


def _parse_file(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    try:
        # One parse of the whole file is several times faster than json.loads per line.
        return json.loads("[" + ",".join(lines) + "]")
    except json.JSONDecodeError:
        pass
    # A writer killed mid-line leaves a partial last line; keep every line that parses.
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def empty_events() -> pd.DataFrame:
    """An event table with every column and no rows."""
    return events_frame([])


def events_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Build the checker's event table (columns :data:`COLUMNS`) from parsed events."""
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    # A column no event filled comes back all-NaN float (or object when empty): make the
    # types the same for every run so downstream code never sees a float "messageId".
    fixed = {c: pd.to_numeric(frame[c], errors="coerce").astype(float) for c in FLOAT_COLUMNS}
    fixed |= {
        c: frame[c].astype(object)
        for c in (*STRING_COLUMNS, *OBJECT_COLUMNS)
        if frame[c].dtype == float
    }
    return frame.assign(**fixed)


def read_events(paths_or_dir: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """Read every event file of a run into one table, sorted by ``t`` (stable across files).

    Lines that are not valid JSON (a writer killed mid-line) are skipped.
    """
    records: list[dict[str, Any]] = []
    for path in event_files(paths_or_dir):
        records.extend(_parse_file(path))
    frame = events_frame(records)
    return frame.sort_values("t", kind="stable", ignore_index=True)
