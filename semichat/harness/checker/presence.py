"""When each recipient unit was present: the intervals that decide which pairs are expected.

On the wire a user is present while one of its SSE streams is open (``connect`` .. ``disconnect``,
or .. run end if never closed). In the user view a client is present while one of its own
streams is open or while it emits view events (from its first to its last).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from semichat.harness.checker.arrays import FloatArray, IntArray, as_strings
from semichat.harness.checker.codes import Clients, Users
from semichat.harness.checker.log import EventLog


@dataclass(frozen=True)
class Intervals:
    """Presence intervals ``[start, end]`` of units (-1: a unit that names no one)."""

    unit: IntArray
    start: FloatArray
    end: FloatArray


@dataclass(frozen=True)
class Streams:
    """Each SSE stream, open from its first connect to its last disconnect (or the run's end)."""

    user: IntArray
    client: IntArray
    start: FloatArray
    end: FloatArray


def streams(log: EventLog, users: Users, clients: Clients) -> Streams:
    """Every stream's owner and open interval; a disconnect of a stream never connected is
    ignored, and a stream never closes before it opened."""
    start = pd.Series(log.connects["t"].to_numpy(), index=as_strings(log.connects["stream"]))
    first_connect = ~start.index.duplicated()
    start = start[first_connect]
    closed = log.disconnects.groupby(as_strings(log.disconnects["stream"]))["t"].max()
    end = closed.reindex(start.index).fillna(log.run_end).to_numpy()
    return Streams(
        user=users.connect[first_connect],
        client=clients.connect[first_connect],
        start=start.to_numpy(),
        end=np.maximum(end, start.to_numpy()),
    )


def view_spans(log: EventLog, clients: Clients) -> Intervals:
    """Each client from its first to its last view event."""
    named = clients.view >= 0
    t = pd.Series(log.views["t"].to_numpy()[named])
    span = t.groupby(clients.view[named]).agg(["min", "max"])
    return Intervals(
        unit=span.index.to_numpy(dtype=np.int64),
        start=span["min"].to_numpy(),
        end=span["max"].to_numpy(),
    )


def present_until(intervals: Intervals, n_units: int, limit: float) -> FloatArray:
    """Per unit, the latest end of its presence intervals that start by ``limit`` (-inf: none).

    A pair acknowledged at ``a <= limit`` finds its unit present at some ``tau`` in
    ``[a, limit]`` exactly when this is at least ``a``.
    """
    latest = np.full(n_units, -np.inf)
    in_time = (intervals.start <= limit) & (intervals.unit >= 0)
    np.maximum.at(latest, intervals.unit[in_time], intervals.end[in_time])
    return latest


def wire_presence(s: Streams, n_users: int, limit: float) -> FloatArray:
    """Per user: how long it was present on the wire (see :func:`present_until`)."""
    return present_until(Intervals(s.user, s.start, s.end), n_users, limit)


def view_presence(s: Streams, spans: Intervals, n_clients: int, limit: float) -> FloatArray:
    """Per client: how long it was present in the user view (see :func:`present_until`)."""
    intervals = Intervals(
        unit=np.concatenate([s.client, spans.unit]),
        start=np.concatenate([s.start, spans.start]),
        end=np.concatenate([s.end, spans.end]),
    )
    return present_until(intervals, n_clients, limit)
