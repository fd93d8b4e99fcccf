"""One level judged: each count of the module docstring as a function of its own.

Two kinds of things are judged. The level's ok pairs (:class:`Pairs`) are expected or not,
delivered, lost or late. Its received pairs (:class:`Receipts`: every (message, unit) that got
at least one delivery, whatever its send said) are duplicated, unexpected, recovered,
misdirected or reordered. :func:`judge` applies them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from semichat.harness.checker.arrays import BoolArray, FloatArray, IntArray, find, run_starts
from semichat.harness.checker.deliveries import Deliveries
from semichat.harness.checker.history import History
from semichat.harness.checker.log import Level
from semichat.harness.checker.pairs import Pairs
from semichat.harness.checker.sends import FAILED_SEND, OK_SEND, UNKNOWN_SEND, StatusArray

# Beyond this a delivery is "late": 5 s, well under the 30 s SQS visibility timeout that a
# notification swallowed by a cancelled long poll waits out before it is delivered again.
LATE_MS = 5000.0


@dataclass(frozen=True)
class Receipts:
    """Received pairs sorted by key (message * n_units + unit), of any kind."""

    key: IntArray
    first: IntArray  # the index in Deliveries of each pair's first delivery
    copies: IntArray  # how many deliveries each pair received
    status: StatusArray  # what the sends say about its message
    message: IntArray


@dataclass(frozen=True)
class Match:
    """Where each ok pair is among the receipts; ``found`` is False for a pair never received."""

    found: BoolArray
    pos: IntArray

    def spread(self, per_receipt: npt.NDArray, fill: float | int | bool) -> npt.NDArray:
        """A per-receipt array as a per-pair one, ``fill`` for pairs never received."""
        out = np.full(len(self.found), fill, dtype=per_receipt.dtype)
        out[self.found] = per_receipt[self.pos[self.found]]
        return out


def receipts(d: Deliveries, n_units: int) -> Receipts:
    """Group deliveries by pair; a pair's first delivery is its earliest (ties: any one)."""
    key = d.message * max(n_units, 1) + d.unit
    order = np.lexsort((d.t, key))
    starts = np.flatnonzero(run_starts(key[order]))
    first = order[starts]
    return Receipts(
        key=key[first],
        first=first,
        copies=np.diff(np.r_[starts, len(key)]).astype(np.int64),
        status=d.status[first],
        message=d.message[first],
    )


def expected(p: Pairs, limit: float) -> BoolArray:
    """Pairs whose unit was present at some ``tau`` with ``ackedAt <= tau <= end - grace_s``."""
    return (p.acked_at <= limit) & (p.present_until[p.unit] >= p.acked_at)


def delivered(is_expected: BoolArray, copies: IntArray) -> BoolArray:
    """Expected pairs received at least once."""
    return is_expected & (copies > 0)


def lost(is_expected: BoolArray, copies: IntArray) -> BoolArray:
    """Expected pairs never received."""
    return is_expected & (copies == 0)


def latency_ms(p: Pairs, first_received_at: FloatArray) -> FloatArray:
    """First receive time minus send start ``t``, in ms; NaN for pairs never received."""
    return (first_received_at - p.sent_at) * 1000.0


def late(is_delivered: BoolArray, latency: FloatArray, late_ms: float) -> BoolArray:
    """Delivered expected pairs whose first receipt came more than ``late_ms`` after ``t``."""
    return is_delivered & (latency > late_ms)


def duplicated(r: Receipts) -> BoolArray:
    """Received pairs (of any kind) received more than once."""
    return r.copies > 1


def unexpected(r: Receipts) -> BoolArray:
    """Received pairs whose message no ok or unknown send reported (or that had no messageId)."""
    return r.status <= FAILED_SEND


def recovered(r: Receipts) -> BoolArray:
    """Received pairs whose message's send outcome was unknown: it exists after all."""
    return r.status == UNKNOWN_SEND


def misdirected(p: Pairs, r: Receipts) -> BoolArray:
    """Received pairs of an ok message whose unit is not among its recipients' units."""
    is_pair, _ = find(p.key, r.key)
    return (r.status == OK_SEND) & ~is_pair


def reordered(h: History, d: Deliveries, r: Receipts) -> BoolArray:
    """Per received pair of a known message: whether its first delivery came after one, to the
    same unit in the same conversation, of a message sent strictly after its acknowledgement.

    Each unit (each tab in the user view) has its own order to keep.
    """
    known = np.flatnonzero(r.status >= UNKNOWN_SEND)
    first = r.first[known]
    # Conversation codes start at -1 (a send that named none), hence the + 1.
    group = d.unit[first] * (len(h.conversation_ids) + 1) + d.conversation[first] + 1
    out = np.zeros(len(r.key), dtype=bool)
    out[known] = overtaken(group, d.t[first], d.sent_at[first], d.acked_at[first])
    return out


def overtaken(
    group: IntArray, received_at: FloatArray, sent_at: FloatArray, acked_at: FloatArray
) -> BoolArray:
    """Whether each delivery came after one, in its group, of a message sent after its ack.

    Within a group sorted by receive time, the running maximum of send start over strictly
    earlier deliveries is compared with the delivery's acknowledgement. Ties in receive time are
    sorted by send start, so a tied partner never counts: its send start is at most ours, which
    is at most our acknowledgement.
    """
    order = np.lexsort((sent_at, received_at, group))
    g = group[order]
    running = pd.Series(sent_at[order]).groupby(g).cummax().to_numpy()
    prior = np.empty(len(order))
    prior[1:] = running[:-1]
    prior[run_starts(g)] = -np.inf
    out = np.zeros(len(order), dtype=bool)
    out[order] = prior > acked_at[order]
    return out


@dataclass(frozen=True)
class Judgement:
    """One level's verdict on each ok pair and on each received pair."""

    pairs: Pairs
    receipts: Receipts
    # Per ok pair:
    expected: BoolArray
    deliveries: IntArray  # copies received
    first_received_at: FloatArray
    latency_ms: FloatArray
    delivered: BoolArray
    lost: BoolArray
    late: BoolArray
    reordered_pair: BoolArray
    # Per received pair:
    duplicated: BoolArray
    unexpected: BoolArray
    recovered: BoolArray
    misdirected: BoolArray
    reordered: BoolArray
    events: int  # delivery events that name a user


def judge(h: History, level: Level, late_ms: float) -> Judgement:
    """Every count's pairs at one level."""
    p, d = h.pairs[level], h.deliveries[level]
    r = receipts(d, p.n_units)
    match = Match(*find(r.key, p.key))
    is_expected = expected(p, h.limit)
    copies = match.spread(r.copies, 0)
    first_received_at = match.spread(d.t[r.first], np.nan)
    latency = latency_ms(p, first_received_at)
    is_delivered = delivered(is_expected, copies)
    is_reordered = reordered(h, d, r)
    return Judgement(
        pairs=p,
        receipts=r,
        expected=is_expected,
        deliveries=copies,
        first_received_at=first_received_at,
        latency_ms=latency,
        delivered=is_delivered,
        lost=lost(is_expected, copies),
        late=late(is_delivered, latency, late_ms),
        reordered_pair=match.spread(is_reordered, False),
        duplicated=duplicated(r),
        unexpected=unexpected(r),
        recovered=recovered(r),
        misdirected=misdirected(p, r),
        reordered=is_reordered,
        events=len(d.t),
    )
