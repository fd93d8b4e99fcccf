"""The delivery checker: a pure function from the clients' recorded events to a verdict.

It trusts only what clients recorded (:mod:`semichat.events`), never the server, and uses the
vocabulary of Jepsen's queue checker and Maelstrom's broadcast checker. It judges two levels
separately:

- ``wire``: raw SSE ``notification`` events, as they came off each connection;
- ``user_view``: ``view`` events, a message first appearing on a user's page after
  de-duplication and history refetch -- what the person actually sees.

The unit is the pair (message, recipient user). Definitions, per level:

- **sent**: distinct messageIds of sends whose outcome is ``ok`` (a 2xx, a duplicate retry's 200
  included). Several ok sends with one messageId count once, the earliest decides ``t``.
- **expected**: pairs (ok message, each user in its ``recipients``, the sender included) whose
  recipient was present at some moment ``tau`` with ``ackedAt <= tau <= end - grace_s``.
  Present means, on the wire, an SSE stream open (``connect`` .. ``disconnect``, or .. run end
  if never closed); for the user view, an open stream or a client of that user emitting view
  events (from its first to its last view event). The other ok pairs are **not_expected**: the
  recipient never came back in time, so a missing delivery is not a fault
  (``not_expected_delivered`` counts those that arrived anyway).
- **delivered** / **lost**: expected pairs received at least once / never.
- **duplicated**: pairs (of any kind) received more than once; ``duplicate_copies`` counts the
  extra copies. On the wire a duplicate is normal (SQS is at-least-once); in the user view it is a
  client bug. Duplicates do not make a level invalid.
- **unexpected**: pairs whose messageId no ``ok`` or ``unknown`` send reported (a delivery of a
  definitely rejected send is unexpected too). A delivery without a messageId is unexpected.
- **recovered**: pairs whose message's send outcome was ``unknown``: the message exists after all.
  A send that timed out usually has no messageId; if delivery events carry the send's
  ``idempotencyKey`` the checker matches them by that key instead. ``recovered_messages`` counts
  the distinct messages.
- **misdirected**: pairs of an ok message delivered to a user not in its recipients.
- **reordered**: per (recipient, conversation), first deliveries sorted by receive time; the
  delivery of m is reordered if a message delivered strictly earlier to that recipient was sent
  (its ``t``) strictly after m was acknowledged -- a violation of real-time order, which includes
  each sequential sender's own order. Ties in receive time are not "earlier".
- **latency_ms**: first receive time minus send start ``t`` of delivered expected pairs; quantiles
  0, 0.5, 0.95, 0.99, 1 (numpy's linear interpolation) as min/p50/p95/p99/max, None when empty.
- **valid**: no lost and no unexpected pair (Jepsen's rule).

The run ends at the last ``run`` event with phase ``end``, else at the last event. An ok send
without ``ackedAt`` is taken as acknowledged at its ``t``. A stream opens at its first
``connect`` and closes at its last ``disconnect`` (never before it opened); a ``disconnect``
of a stream never connected is ignored, and so is a delivery that names no user.

Everything is vectorised: the cost is a few sorts and hash look-ups over the events, with no
Python loop over events or messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from semichat.events import (
    COLUMNS,
    CONNECT,
    DISCONNECT,
    FAILED,
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
LEVEL_EVENT: dict[Level, str] = {"wire": NOTIFICATION, "user_view": VIEW}
LATENCY_QUANTILES = {"min": 0.0, "p50": 0.5, "p95": 0.95, "p99": 0.99, "max": 1.0}
LOST_EXAMPLES = 10

# What a message's sends say about it; the highest applies when several sends share a messageId.
_NONE, _FAILED, _UNKNOWN, _OK = 0, 1, 2, 3

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _normalise(events: pd.DataFrame) -> pd.DataFrame:
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


def _str(values: pd.Series) -> npt.NDArray[np.object_]:
    """Strings as an object array, missing values as None, so codes can be shared across tables."""
    return values.astype(object).where(values.notna(), None).to_numpy()


@dataclass(frozen=True)
class _Deliveries:
    """One level's delivery events, attributed to sends."""

    user: IntArray
    message: IntArray  # code into _History.message_ids; n_messages for "no messageId"
    t: FloatArray
    status: npt.NDArray[np.int8]
    sent_at: FloatArray
    acked_at: FloatArray
    conversation: IntArray


@dataclass(frozen=True)
class _History:
    """The recorded events, coded as integers so every later step is a numpy operation."""

    run_start: float
    run_end: float
    grace_s: float
    user_ids: npt.NDArray[np.object_]
    message_ids: npt.NDArray[np.object_]
    conversation_ids: npt.NDArray[np.object_]
    n_sent: int
    sends: dict[str, int]
    streams: dict[str, int]
    # Expected-or-not pairs of ok messages, sorted by pair key (message * n_users + user).
    pair_key: IntArray
    pair_message: IntArray
    pair_user: IntArray
    pair_sender: IntArray
    pair_conversation: IntArray
    pair_sent_at: FloatArray
    pair_acked_at: FloatArray
    deliveries: dict[Level, _Deliveries]
    # Per level and user: the latest end of a presence interval starting by end - grace_s.
    present_until: dict[Level, FloatArray]

    @property
    def n_users(self) -> int:
        return len(self.user_ids)


def _history(events: pd.DataFrame, grace_s: float) -> _History:
    ev = _normalise(events)
    kind = ev["type"].to_numpy(dtype=object)
    by_type = {k: ev[kind == k] for k in (SEND, CONNECT, DISCONNECT, NOTIFICATION, VIEW, RUN)}
    sends, runs = by_type[SEND], by_type[RUN]

    t_all = ev["t"].to_numpy()
    ends = runs["t"][runs["phase"].to_numpy(dtype=object) == PHASE_END]
    run_end = float(ends.max()) if len(ends) else (float(np.nanmax(t_all)) if len(ev) else np.nan)
    run_start = float(np.nanmin(t_all)) if len(ev) else np.nan
    limit = run_end - grace_s

    outcome = sends["outcome"].to_numpy(dtype=object)
    ok = sends[outcome == OK].sort_values("t", kind="stable")
    ok = ok[ok["messageId"].notna()].drop_duplicates("messageId").reset_index(drop=True)
    unknown = sends[outcome == UNKNOWN]

    # One code space per identifier, shared by all tables: a few hash passes in total.
    levels: tuple[Level, ...] = ("wire", "user_view")
    level_events = [by_type[LEVEL_EVENT[lv]] for lv in levels]
    recipients = ok["recipients"].explode().dropna()
    user_codes, user_ids = pd.factorize(
        np.concatenate(
            [_str(recipients), _str(ok["user"]), *(_str(d["user"]) for d in level_events)]
            + [_str(by_type[k]["user"]) for k in (CONNECT, DISCONNECT)]
        ),
        use_na_sentinel=True,
    )
    n_users = len(user_ids)
    recipient_codes = user_codes[: len(recipients)]
    sender_codes = user_codes[len(recipients) : len(recipients) + len(ok)]
    offset = len(recipients) + len(ok)
    level_user_codes = []
    for d in level_events:
        level_user_codes.append(user_codes[offset : offset + len(d)])
        offset += len(d)
    connect_users = user_codes[offset : offset + len(by_type[CONNECT])]

    msg_codes, message_ids = pd.factorize(
        np.concatenate([_str(sends["messageId"]), *(_str(d["messageId"]) for d in level_events)])
    )
    n_messages = len(message_ids)
    msg_codes = np.where(msg_codes < 0, n_messages, msg_codes)  # sentinel: no messageId
    conv_codes, conv_ids = pd.factorize(_str(sends["conversationId"]))

    # What the sends say about each message (index n_messages is the "no messageId" sentinel).
    send_msg = msg_codes[: len(sends)]
    send_status = np.select(
        [outcome == OK, outcome == UNKNOWN, outcome == FAILED], [_OK, _UNKNOWN, _FAILED], _NONE
    ).astype(np.int8)
    status = np.zeros(n_messages + 1, dtype=np.int8)
    np.maximum.at(status, send_msg, send_status)
    status[n_messages] = _NONE
    sent_at = np.full(n_messages + 1, np.nan)
    acked_at = np.full(n_messages + 1, np.nan)
    conversation = np.full(n_messages + 1, -1, dtype=np.int64)
    # Unknown sends first, so an ok send of the same message overwrites them.
    is_unknown = send_status == _UNKNOWN
    sent_at[send_msg[is_unknown]] = sends["t"].to_numpy()[is_unknown]
    conversation[send_msg[is_unknown]] = conv_codes[is_unknown]
    ok_msg = pd.Index(message_ids).get_indexer(_str(ok["messageId"])).astype(np.int64)
    ok_t = ok["t"].to_numpy()
    ok_acked = ok["ackedAt"].to_numpy()
    ok_acked = np.where(np.isnan(ok_acked), ok_t, ok_acked)
    ok_conv = pd.Index(conv_ids).get_indexer(_str(ok["conversationId"])).astype(np.int64)
    sent_at[ok_msg], acked_at[ok_msg], conversation[ok_msg] = ok_t, ok_acked, ok_conv
    sent_at[n_messages] = acked_at[n_messages] = np.nan
    conversation[n_messages] = -1

    # Sends whose outcome is unknown, by idempotency key, for deliveries that carry one.
    unk = unknown[unknown["idempotencyKey"].notna()].drop_duplicates("idempotencyKey")
    unk_keys = pd.Index(_str(unk["idempotencyKey"]))
    unk_t = unk["t"].to_numpy()
    unk_conv = pd.Index(conv_ids).get_indexer(_str(unk["conversationId"])).astype(np.int64)

    deliveries: dict[Level, _Deliveries] = {}
    offset = len(sends)
    for lv, d, users in zip(levels, level_events, level_user_codes, strict=True):
        m = msg_codes[offset : offset + len(d)].astype(np.int64)
        offset += len(d)
        # A delivery that names no user cannot be paired with a recipient: ignore it.
        named = users >= 0
        d, m, users = d[named], m[named], users[named]
        d_status, d_sent, d_conv = status[m], sent_at[m], conversation[m]
        j = unk_keys.get_indexer(_str(d["idempotencyKey"])) if len(unk_keys) else None
        if j is not None:
            by_key = (j >= 0) & (d_status < _UNKNOWN)
            d_status = np.where(by_key, _UNKNOWN, d_status).astype(np.int8)
            d_sent = np.where(by_key, unk_t[j], d_sent)
            d_conv = np.where(by_key, unk_conv[j], d_conv)
        deliveries[lv] = _Deliveries(
            user=users.astype(np.int64),
            message=m,
            t=d["t"].to_numpy(),
            status=d_status,
            sent_at=d_sent,
            acked_at=acked_at[m],
            conversation=d_conv,
        )

    # Pairs of ok messages and their recipients, each pair once.
    row = recipients.index.to_numpy()
    key = ok_msg[row] * n_users + recipient_codes
    pair_key, first = np.unique(key, return_index=True)
    row = row[first]

    # Presence: SSE streams, open from connect to disconnect (or to the run's end).
    connects, disconnects = by_type[CONNECT], by_type[DISCONNECT]
    stream_start = pd.Series(connects["t"].to_numpy(), index=_str(connects["stream"]))
    stream_user = pd.Series(connect_users, index=stream_start.index)
    first_connect = ~stream_start.index.duplicated()
    stream_start, stream_user = stream_start[first_connect], stream_user[first_connect]
    closed = disconnects.groupby(_str(disconnects["stream"]))["t"].max()
    stream_end = closed.reindex(stream_start.index).fillna(run_end).to_numpy()
    stream_end = np.maximum(stream_end, stream_start.to_numpy())
    wire_u, wire_s, wire_e = stream_user.to_numpy(), stream_start.to_numpy(), stream_end
    # A user's page is also present from its first to its last view event.
    views = by_type[VIEW]
    span = (
        pd.DataFrame({"u": level_user_codes[1], "c": _str(views["client"]), "t": views["t"]})
        .groupby(["u", "c"], dropna=False)["t"]
        .agg(["min", "max"])
    )
    view_u = np.concatenate([wire_u, span.index.get_level_values("u").to_numpy()])
    view_s = np.concatenate([wire_s, span["min"].to_numpy()])
    view_e = np.concatenate([wire_e, span["max"].to_numpy()])

    def present_until(u: IntArray, s: FloatArray, e: FloatArray) -> FloatArray:
        latest = np.full(n_users, -np.inf)
        in_time = (s <= limit) & (u >= 0)
        np.maximum.at(latest, u[in_time].astype(np.int64), e[in_time])
        return latest

    return _History(
        run_start=run_start,
        run_end=run_end,
        grace_s=grace_s,
        user_ids=np.asarray(user_ids, dtype=object),
        message_ids=np.asarray(message_ids, dtype=object),
        n_sent=len(ok),
        conversation_ids=np.asarray(conv_ids, dtype=object),
        sends={
            "attempted": len(sends),
            "ok": int((outcome == OK).sum()),
            "failed": int((outcome == FAILED).sum()),
            "unknown": int((outcome == UNKNOWN).sum()),
        },
        streams={
            "connects": len(connects),
            "disconnects": len(disconnects),
            "users": len(np.unique(connect_users[connect_users >= 0])),
        },
        pair_key=pair_key,
        pair_message=ok_msg[row],
        pair_user=pair_key % max(n_users, 1),
        pair_sender=sender_codes[row],
        pair_conversation=ok_conv[row],
        pair_sent_at=ok_t[row],
        pair_acked_at=ok_acked[row],
        deliveries=deliveries,
        present_until={
            "wire": present_until(wire_u, wire_s, wire_e),
            "user_view": present_until(view_u, view_s, view_e),
        },
    )


@dataclass(frozen=True)
class _LevelResult:
    """One level's outcome: per ok pair (aligned with _History.pair_*) and per delivered pair."""

    expected: BoolArray
    deliveries: IntArray  # receive count per ok pair
    first_received_at: FloatArray
    reordered: BoolArray  # per ok pair
    # Per delivered pair (any kind):
    copies: IntArray
    status: npt.NDArray[np.int8]
    message: IntArray
    misdirected: BoolArray
    reordered_delivered: BoolArray
    events: int


def _run_starts(sorted_codes: IntArray) -> BoolArray:
    """True where a run of equal codes begins in a sorted array."""
    starts = np.ones(len(sorted_codes), dtype=bool)
    starts[1:] = sorted_codes[1:] != sorted_codes[:-1]
    return starts


def _find(sorted_keys: IntArray, queries: IntArray) -> tuple[BoolArray, IntArray]:
    """Whether each query is among sorted unique keys, and where (0 when it is not)."""
    if not len(sorted_keys):
        return np.zeros(len(queries), dtype=bool), np.zeros(len(queries), dtype=np.int64)
    pos = np.searchsorted(sorted_keys, queries).clip(max=len(sorted_keys) - 1)
    found = sorted_keys[pos] == queries
    return found, np.where(found, pos, 0)


def _reordered(
    group: IntArray, received_at: FloatArray, sent_at: FloatArray, acked_at: FloatArray
) -> BoolArray:
    """Whether each first delivery came after one, in its group, of a message sent after its ack.

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
    prior[_run_starts(g)] = -np.inf
    reordered = np.zeros(len(order), dtype=bool)
    reordered[order] = prior > acked_at[order]
    return reordered


def _analyse(h: _History, level: Level) -> _LevelResult:
    d = h.deliveries[level]
    key = d.message * max(h.n_users, 1) + d.user
    order = np.lexsort((d.t, key))
    starts = np.flatnonzero(_run_starts(key[order]))
    copies = np.diff(np.r_[starts, len(key)]).astype(np.int64)
    first = order[starts]  # the first delivery of each delivered pair
    delivered_key = key[first]
    status = d.status[first]

    # Real-time order, per (recipient, conversation), over first deliveries of known messages.
    known = np.flatnonzero(status >= _UNKNOWN)
    fk = first[known]
    # Conversation codes start at -1 (a send that named none), hence the + 1.
    group = d.user[fk] * (len(h.conversation_ids) + 1) + d.conversation[fk] + 1
    reordered_delivered = np.zeros(len(first), dtype=bool)
    reordered_delivered[known] = _reordered(group, d.t[fk], d.sent_at[fk], d.acked_at[fk])

    # Join ok pairs with delivered pairs; both key arrays are sorted and unique.
    found, pos = _find(delivered_key, h.pair_key)
    is_ok_pair, _ = _find(h.pair_key, delivered_key)
    n_pairs = len(h.pair_key)
    deliveries = np.zeros(n_pairs, dtype=np.int64)
    deliveries[found] = copies[pos[found]]
    first_received_at = np.full(n_pairs, np.nan)
    first_received_at[found] = d.t[first[pos[found]]]
    reordered = np.zeros(n_pairs, dtype=bool)
    reordered[found] = reordered_delivered[pos[found]]

    present = h.present_until[level][h.pair_user]
    expected = (h.pair_acked_at <= h.run_end - h.grace_s) & (present >= h.pair_acked_at)
    return _LevelResult(
        expected=expected,
        deliveries=deliveries,
        first_received_at=first_received_at,
        reordered=reordered,
        copies=copies,
        status=status,
        message=d.message[first],
        misdirected=(status == _OK) & ~is_ok_pair,
        reordered_delivered=reordered_delivered,
        events=len(key),
    )


def _quantiles(values_ms: FloatArray) -> dict[str, float | int | None]:
    out: dict[str, float | int | None] = dict.fromkeys(LATENCY_QUANTILES)
    if len(values_ms):
        qs = np.quantile(values_ms, list(LATENCY_QUANTILES.values()))
        out = {name: float(q) for name, q in zip(LATENCY_QUANTILES, qs, strict=True)}
    out["count"] = len(values_ms)
    return out


def _summarise(h: _History, level: Level, r: _LevelResult) -> dict[str, Any]:
    delivered = r.expected & (r.deliveries > 0)
    lost = r.expected & (r.deliveries == 0)
    lost_idx = np.flatnonzero(lost)
    lost_idx = lost_idx[np.lexsort((h.pair_key[lost_idx], h.pair_sent_at[lost_idx]))]
    lost_idx = lost_idx[:LOST_EXAMPLES]
    recovered = r.status == _UNKNOWN
    sent = h.n_sent
    summary: dict[str, Any] = {
        "sent": sent,
        "expected": int(r.expected.sum()),
        "delivered": int(delivered.sum()),
        "lost": int(lost.sum()),
        "duplicated": int((r.copies > 1).sum()),
        "duplicate_copies": int((r.copies - 1).sum()),
        "reordered": int(r.reordered_delivered.sum()),
        "unexpected": int((r.status <= _FAILED).sum()),
        "recovered": int(recovered.sum()),
        "recovered_messages": len(np.unique(r.message[recovered])),
        "not_expected": int((~r.expected).sum()),
        "not_expected_delivered": int((~r.expected & (r.deliveries > 0)).sum()),
        "misdirected": int(r.misdirected.sum()),
        "events": r.events,
        "latency_ms": _quantiles((r.first_received_at - h.pair_sent_at)[delivered] * 1000.0),
        "lost_examples": [
            [str(h.message_ids[h.pair_message[i]]), str(h.user_ids[h.pair_user[i]])]
            for i in lost_idx  # at most LOST_EXAMPLES
        ],
    }
    per_message = "notifications_per_message" if level == "wire" else "views_per_message"
    summary[per_message] = r.events / sent if sent else None
    summary["valid"] = summary["lost"] == 0 and summary["unexpected"] == 0
    return summary


def _float_or_none(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def check(events: pd.DataFrame, *, grace_s: float = 5.0) -> dict[str, Any]:
    """Judge a run's recorded client events; returns a JSON-serialisable results dict.

    ``grace_s``: a recipient must have been present at least this long before the run's end for
    a delivery to be expected. See the module docstring for every count's definition.
    """
    h = _history(events, grace_s)
    return {
        "run": {
            "start": _float_or_none(h.run_start),
            "end": _float_or_none(h.run_end),
            "grace_s": float(grace_s),
        },
        "sends": h.sends,
        "streams": h.streams,
        "wire": _summarise(h, "wire", _analyse(h, "wire")),
        "user_view": _summarise(h, "user_view", _analyse(h, "user_view")),
    }


def per_message_table(
    events: pd.DataFrame, *, grace_s: float = 5.0, level: Level = "wire"
) -> pd.DataFrame:
    """One row per (ok message, recipient) pair at one level, for plots and notebooks.

    Columns: messageId, recipient, sender, conversationId, sent_at, acked_at, expected,
    deliveries (copies received), first_received_at, latency_ms, lost, reordered.
    """
    h = _history(events, grace_s)
    r = _analyse(h, level)
    table = pd.DataFrame(
        {
            "messageId": h.message_ids[h.pair_message] if len(h.pair_key) else [],
            "recipient": h.user_ids[h.pair_user] if len(h.pair_key) else [],
            "sender": h.user_ids[h.pair_sender] if len(h.pair_key) else [],
            "conversationId": h.conversation_ids[h.pair_conversation] if len(h.pair_key) else [],
            "sent_at": h.pair_sent_at,
            "acked_at": h.pair_acked_at,
            "expected": r.expected,
            "deliveries": r.deliveries,
            "first_received_at": r.first_received_at,
            "latency_ms": (r.first_received_at - h.pair_sent_at) * 1000.0,
            "lost": r.expected & (r.deliveries == 0),
            "reordered": r.reordered,
        }
    )
    return table
