"""The event log as the checker reads it: every column present, split by event type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from semichat.harness.events import (
    COLUMNS,
    CONNECT,
    DISCONNECT,
    FLOAT_COLUMNS,
    NOTIFICATION,
    OK,
    PHASE_END,
    RUN,
    SEND,
    UNKNOWN,
    VIEW,
)

Level = Literal["wire", "user_view"]
LEVELS: tuple[Level, ...] = ("wire", "user_view")
# The event each level counts as a delivery.
LEVEL_EVENT: dict[Level, str] = {"wire": NOTIFICATION, "user_view": VIEW}


@dataclass(frozen=True)
class EventLog:
    """The recorded events by type, each table with every column of :data:`COLUMNS`."""

    sends: pd.DataFrame
    ok: pd.DataFrame  # each messageId's earliest ok send (ties: the earlier line), 0..n-1
    unknown: pd.DataFrame  # sends whose outcome is unknown
    connects: pd.DataFrame
    disconnects: pd.DataFrame
    deliveries: dict[Level, pd.DataFrame]  # notifications on the wire, views in the user view
    run_start: float
    run_end: float

    @property
    def views(self) -> pd.DataFrame:
        return self.deliveries["user_view"]


def normalise(events: pd.DataFrame) -> pd.DataFrame:
    """Give a hand-built or partial table every column the checker reads."""
    missing = [c for c in COLUMNS if c not in events.columns]
    if missing:
        events = events.assign(
            **{c: (np.nan if c in FLOAT_COLUMNS else None) for c in missing},
        )
    for c in FLOAT_COLUMNS:
        if events[c].dtype != np.float64:
            events = events.assign(**{c: pd.to_numeric(events[c], errors="coerce").astype(float)})
    return events


def run_bounds(events: pd.DataFrame, runs: pd.DataFrame) -> tuple[float, float]:
    """The run's start (its first event) and end (its last ``end`` marker, else its last event)."""
    if not len(events):
        return np.nan, np.nan
    t = events["t"].to_numpy()
    ends = runs["t"][runs["phase"].to_numpy(dtype=object) == PHASE_END]
    end = float(ends.max()) if len(ends) else float(np.nanmax(t))
    return float(np.nanmin(t)), end


def first_ok_sends(sends: pd.DataFrame) -> pd.DataFrame:
    """Each messageId's earliest ok send: several ok sends of one message count once."""
    ok = sends[sends["outcome"].to_numpy(dtype=object) == OK].sort_values("t", kind="stable")
    return ok[ok["messageId"].notna()].drop_duplicates("messageId").reset_index(drop=True)


def split_log(events: pd.DataFrame) -> EventLog:
    """Normalise the recorded events and split them by type."""
    ev = normalise(events)
    kind = ev["type"].to_numpy(dtype=object)
    by_type = {k: ev[kind == k] for k in (SEND, CONNECT, DISCONNECT, NOTIFICATION, VIEW, RUN)}
    sends = by_type[SEND]
    start, end = run_bounds(ev, by_type[RUN])
    return EventLog(
        sends=sends,
        ok=first_ok_sends(sends),
        unknown=sends[sends["outcome"].to_numpy(dtype=object) == UNKNOWN],
        connects=by_type[CONNECT],
        disconnects=by_type[DISCONNECT],
        deliveries={lv: by_type[LEVEL_EVENT[lv]] for lv in LEVELS},
        run_start=start,
        run_end=end,
    )
