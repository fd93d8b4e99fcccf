"""The delivery checker: a pure function from the clients' recorded events to a verdict.

It trusts only what clients recorded (:mod:`semichat.events`), never the server, and uses the
vocabulary of Jepsen's queue checker and Maelstrom's broadcast checker. It judges two levels
separately, each with its own unit of recipient:

- ``wire``: raw SSE ``notification`` events, as they came off the connections. The unit is the
  pair (message, recipient user): a notification on any of the user's streams reaches the user,
  since one queue per user feeds all of them (tabs compete for its notifications).
- ``user_view``: ``view`` events, a message first appearing in a client after de-duplication and
  history refetch -- what the person actually sees. The unit is the pair (message, recipient
  client), a client being one tab or page of a recipient user, named by the events' ``client``
  field; each tab shows each message once, so three tabs are three pairs, not a duplicate. An
  event without ``client`` stands for its user's one client, named after the user (old runs).
  The fallback is per event: a history must name clients on its connects and views alike, or on
  neither. A recipient that recorded no client at all has one stand-in client, never present.
  ``clients`` counts the distinct clients that connect and view events name.

Definitions, per level:

- **sent**: distinct messageIds of sends whose outcome is ``ok`` (a 2xx, a duplicate retry's 200
  included). Several ok sends with one messageId count once, the earliest decides ``t``.
- **expected**: pairs (ok message, each recipient unit: each user in its ``recipients``, the
  sender included; in the user view each client of such a user) whose unit was present at some
  moment ``tau`` with ``ackedAt <= tau <= end - grace_s``. Present means, on the wire, one of the
  user's SSE streams open (``connect`` .. ``disconnect``, or .. run end if never closed); in the
  user view, one of the client's own streams open or the client emitting view events (from its
  first to its last). The other ok pairs are **not_expected**: the unit never came back in time,
  so a missing delivery is not a fault (``not_expected_delivered`` counts those that arrived).
- **delivered** / **lost**: expected pairs received at least once / never.
- **late**: delivered expected pairs whose first receipt came more than ``late_ms`` after the
  send's ``t``. A notification swallowed by a long poll that was cancelled when its stream went
  away returns only after the SQS visibility timeout (30 s): it is not lost, but a reader of
  ``lost`` alone would never see it. ``lost`` is unchanged by it.
- **duplicated**: pairs (of any kind) received more than once; ``duplicate_copies`` counts the
  extra copies. On the wire a duplicate is normal (SQS is at-least-once); in the user view it is a
  client bug (one client showing a message twice). Duplicates do not make a level invalid.
- **unexpected**: pairs whose message no ``ok`` or ``unknown`` send reported (a delivery of a
  definitely rejected send is unexpected too). A delivery without a messageId is unexpected.
- **recovered**: pairs whose message's send outcome was ``unknown``: the message exists after all.
  A send that timed out usually has no messageId, so it is matched by its ``idempotencyKey``: a
  delivery event may carry the key itself, and any delivery event carrying both a messageId and
  a key (a view parses it from the message's text) bridges that messageId to the send, which
  matches the message's other deliveries too (wire notifications carry no key). An ok send of the
  messageId still wins. ``recovered_messages`` counts the distinct messages.
- **misdirected**: pairs of an ok message delivered to a user not in its recipients (in the user
  view: to a client of such a user).
- **reordered**: per (recipient unit, conversation), first deliveries sorted by receive time; the
  delivery of m is reordered if a message delivered strictly earlier to that unit was sent
  (its ``t``) strictly after m was acknowledged -- a violation of real-time order, which includes
  each sequential sender's own order. Ties in receive time are not "earlier".
- **latency_ms**: first receive time minus send start ``t`` of delivered expected pairs; quantiles
  0, 0.5, 0.95, 0.99, 1 (numpy's linear interpolation) as min/p50/p95/p99/max, None when empty.
- **lost_examples**: up to ten lost pairs, earliest send first, as ``[messageId, user]`` on the
  wire and ``[messageId, user, client]`` in the user view.
- **valid**: no lost and no unexpected pair (Jepsen's rule).

The run ends at the last ``run`` event with phase ``end``, else at the last event. A message's
``t`` and conversation are its earliest ok send's, else its earliest unknown send's (ties: the
earlier line of the log). An ok send without ``ackedAt`` is taken as acknowledged at its ``t``. A stream opens at its first
``connect`` (which names its user and client) and closes at its last ``disconnect`` (never
before it opened); a ``disconnect`` of a stream never connected is ignored, and so is a delivery
that names no user.

Everything is vectorised: the cost is a few sorts and hash look-ups over the events, with no
Python loop over events or messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from semichat.harness.events import (
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
# Beyond this a delivery is "late": 5 s, well under the 30 s SQS visibility timeout that a
# notification swallowed by a cancelled long poll waits out before it is delivered again.
LATE_MS = 5000.0

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
    """One level's delivery events, attributed to sends and to the level's unit of recipient."""

    unit: IntArray  # the user (wire) or the client (user view) that received it
    message: IntArray  # code into _History.message_ids; n_messages for "no messageId"
    t: FloatArray
    status: npt.NDArray[np.int8]
    sent_at: FloatArray
    acked_at: FloatArray
    conversation: IntArray


@dataclass(frozen=True)
class _Pairs:
    """One level's expected-or-not pairs (ok message, recipient unit), sorted by key.

    The unit is a user on the wire and a client (a tab or page of a user) in the user view;
    ``key`` is message * n_units + unit, unique.
    """

    n_units: int
    key: IntArray
    message: IntArray
    user: IntArray  # the recipient user (the unit's user in the user view)
    unit: IntArray
    sender: IntArray
    conversation: IntArray
    sent_at: FloatArray
    acked_at: FloatArray
    # Per unit: the latest end of a presence interval starting by end - grace_s.
    present_until: FloatArray


@dataclass(frozen=True)
class _History:
    """The recorded events, coded as integers so every later step is a numpy operation."""

    run_start: float
    run_end: float
    grace_s: float
    user_ids: npt.NDArray[np.object_]
    message_ids: npt.NDArray[np.object_]
    conversation_ids: npt.NDArray[np.object_]
    # Client units of the user view: recorded clients first, then one stand-in per user that
    # recorded none (named after the user; never present).
    client_ids: npt.NDArray[np.object_]
    n_clients: int  # recorded clients only
    n_sent: int
    sends: dict[str, int]
    streams: dict[str, int]
    pairs: dict[Level, _Pairs]
    deliveries: dict[Level, _Deliveries]


def _client_names(d: pd.DataFrame) -> npt.NDArray[np.object_]:
    """Each event's client; an event naming none stands for its user's one client (old runs)."""
    return _str(d["client"].where(d["client"].notna(), d["user"]))


def _present_until(units: IntArray, s: FloatArray, e: FloatArray, n: int, limit: float):
    """Per unit, the latest end of its presence intervals that start by ``limit``."""
    latest = np.full(n, -np.inf)
    in_time = (s <= limit) & (units >= 0)
    np.maximum.at(latest, units[in_time], e[in_time])
    return latest


def _history(events: pd.DataFrame, grace_s: float) -> _History:
    ev = _normalise(events)
    kind = ev["type"].to_numpy(dtype=object)
    by_type = {k: ev[kind == k] for k in (SEND, CONNECT, DISCONNECT, NOTIFICATION, VIEW, RUN)}
    sends, runs = by_type[SEND], by_type[RUN]
    connects, disconnects, views = by_type[CONNECT], by_type[DISCONNECT], by_type[VIEW]

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
            [
                _str(recipients),
                _str(ok["user"]),
                *(_str(d["user"]) for d in level_events),
                _str(connects["user"]),
            ]
        ),
        use_na_sentinel=True,
    )
    n_users = len(user_ids)
    recipient_codes = user_codes[: len(recipients)]
    sender_codes = user_codes[len(recipients) : len(recipients) + len(ok)]
    offset = len(recipients) + len(ok)
    level_user_codes = []
    for d in level_events:
        level_user_codes.append(user_codes[offset : offset + len(d)].astype(np.int64))
        offset += len(d)
    connect_users = user_codes[offset : offset + len(connects)].astype(np.int64)
    view_users = level_user_codes[1]

    # Clients, the user view's unit: a (user, client name) pair, since only the user makes a
    # hand-built name like "p1" unique. Streams and view events name them.
    name_codes, names = pd.factorize(
        np.concatenate([_client_names(connects), _client_names(views)])
    )
    owner = np.concatenate([connect_users, view_users])
    named = (owner >= 0) & (name_codes >= 0)
    combo = owner * (len(names) + 1) + name_codes
    found_clients, inverse = np.unique(combo[named], return_inverse=True)
    client_codes = np.full(len(combo), -1, dtype=np.int64)
    client_codes[named] = inverse
    n_clients = len(found_clients)
    client_owner = found_clients // (len(names) + 1)
    # A user that recorded no client still gets one, never present, so that its pairs are
    # counted as not expected (as on the wire) rather than vanishing.
    clientless = np.setdiff1d(np.arange(n_users), client_owner)
    client_user = np.concatenate([client_owner, clientless]).astype(np.int64)
    client_ids = np.concatenate(
        [np.asarray(names, dtype=object)[found_clients % (len(names) + 1)], user_ids[clientless]]
    ).astype(object)
    connect_clients = client_codes[: len(connects)]
    view_clients = client_codes[len(connects) :]

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
    # Unknown sends first, so an ok send of the same message overwrites them. As for ok sends,
    # the earliest decides (ties: the earlier line), whatever order the log lists them in.
    is_unknown = np.flatnonzero(send_status == _UNKNOWN)
    unknown_t = sends["t"].to_numpy()[is_unknown]
    earliest = is_unknown[np.lexsort((is_unknown, unknown_t, send_msg[is_unknown]))]
    earliest = earliest[_run_starts(send_msg[earliest])]
    sent_at[send_msg[earliest]] = sends["t"].to_numpy()[earliest]
    conversation[send_msg[earliest]] = conv_codes[earliest]
    ok_msg = pd.Index(message_ids).get_indexer(_str(ok["messageId"])).astype(np.int64)
    ok_t = ok["t"].to_numpy()
    ok_acked = ok["ackedAt"].to_numpy()
    ok_acked = np.where(np.isnan(ok_acked), ok_t, ok_acked)
    ok_conv = pd.Index(conv_ids).get_indexer(_str(ok["conversationId"])).astype(np.int64)
    sent_at[ok_msg], acked_at[ok_msg], conversation[ok_msg] = ok_t, ok_acked, ok_conv
    sent_at[n_messages] = acked_at[n_messages] = np.nan
    conversation[n_messages] = -1

    # Sends whose outcome is unknown have no messageId; their idempotency key names them. A
    # delivery event may carry the key itself, and any delivery event carrying both a messageId
    # and a key of an unknown send bridges that messageId to the send, so every other delivery
    # of the message (a wire notification has no text to parse the key from) is recovered too.
    unk = unknown[unknown["idempotencyKey"].notna()].drop_duplicates("idempotencyKey")
    unk_keys = pd.Index(_str(unk["idempotencyKey"]))
    unk_t = unk["t"].to_numpy()
    unk_conv = pd.Index(conv_ids).get_indexer(_str(unk["conversationId"])).astype(np.int64)
    delivery_msg = msg_codes[len(sends) :].astype(np.int64)
    own_key = np.full(len(delivery_msg), -1, dtype=np.int64)
    if len(unk_keys):
        own_key = unk_keys.get_indexer(
            np.concatenate([_str(d["idempotencyKey"]) for d in level_events])
        ).astype(np.int64)
    bridge = np.full(n_messages + 1, -1, dtype=np.int64)
    # Should two keys claim one messageId (a corrupt log), the later unknown send wins: any
    # fixed rule keeps the result a function of the events, not of their order.
    np.maximum.at(bridge, delivery_msg[own_key >= 0], own_key[own_key >= 0])
    bridge[n_messages] = -1  # "no messageId" is not one message
    by_send = np.where(own_key >= 0, own_key, bridge[delivery_msg])

    deliveries: dict[Level, _Deliveries] = {}
    offset = 0
    for lv, d, units in zip(levels, level_events, (level_user_codes[0], view_clients), strict=True):
        m = delivery_msg[offset : offset + len(d)]
        j = by_send[offset : offset + len(d)]
        offset += len(d)
        # A delivery that names no user cannot be paired with a recipient: ignore it.
        keep = units >= 0
        d, m, j, units = d[keep], m[keep], j[keep], units[keep]
        d_status, d_sent, d_conv = status[m], sent_at[m], conversation[m]
        by_key = (j >= 0) & (d_status < _UNKNOWN)
        jj = np.where(by_key, j, 0)
        if len(unk_keys):
            d_status = np.where(by_key, _UNKNOWN, d_status).astype(np.int8)
            d_sent = np.where(by_key, unk_t[jj], d_sent)
            d_conv = np.where(by_key, unk_conv[jj], d_conv)
        deliveries[lv] = _Deliveries(
            unit=units,
            message=m,
            t=d["t"].to_numpy(),
            status=d_status,
            sent_at=d_sent,
            acked_at=acked_at[m],
            conversation=d_conv,
        )

    # Presence. Wire: each user's SSE streams, open from connect to disconnect (or run end).
    stream_start = pd.Series(connects["t"].to_numpy(), index=_str(connects["stream"]))
    first_connect = ~stream_start.index.duplicated()
    stream_start = stream_start[first_connect]
    stream_user = connect_users[first_connect]
    stream_client = connect_clients[first_connect]
    closed = disconnects.groupby(_str(disconnects["stream"]))["t"].max()
    stream_end = closed.reindex(stream_start.index).fillna(run_end).to_numpy()
    stream_s = stream_start.to_numpy()
    stream_end = np.maximum(stream_end, stream_s)
    # User view: each client's own streams, and the client from its first to its last view.
    has_client = view_clients >= 0
    span = (
        pd.Series(views["t"].to_numpy()[has_client])
        .groupby(view_clients[has_client])
        .agg(["min", "max"])
    )
    view_u = np.concatenate([stream_client, span.index.to_numpy(dtype=np.int64)])
    view_s = np.concatenate([stream_s, span["min"].to_numpy()])
    view_e = np.concatenate([stream_end, span["max"].to_numpy()])

    # Wire pairs: ok messages and their recipients, each pair once.
    row = recipients.index.to_numpy()
    key = ok_msg[row] * n_users + recipient_codes
    wire_key, first = np.unique(key, return_index=True)
    row = row[first]
    wire_user = wire_key % max(n_users, 1)
    wire = _Pairs(
        n_units=n_users,
        key=wire_key,
        message=ok_msg[row],
        user=wire_user,
        unit=wire_user,
        sender=sender_codes[row],
        conversation=ok_conv[row],
        sent_at=ok_t[row],
        acked_at=ok_acked[row],
        present_until=_present_until(stream_user, stream_s, stream_end, n_users, limit),
    )
    # User-view pairs: each wire pair once per client of its recipient (a ragged repeat).
    by_owner = np.argsort(client_user, kind="stable")
    per_user = np.bincount(client_user, minlength=n_users)
    owner_start = np.cumsum(per_user) - per_user
    reps = per_user[wire_user]
    pair = np.repeat(np.arange(len(wire_key)), reps)
    within = np.arange(len(pair)) - np.repeat(np.cumsum(reps) - reps, reps)
    client = by_owner[owner_start[wire_user[pair]] + within]
    n_units = len(client_user)
    view_key = wire.message[pair] * n_units + client
    order = np.argsort(view_key, kind="stable")
    pair, client = pair[order], client[order]
    user_view = _Pairs(
        n_units=n_units,
        key=view_key[order],
        message=wire.message[pair],
        user=wire_user[pair],
        unit=client,
        sender=wire.sender[pair],
        conversation=wire.conversation[pair],
        sent_at=wire.sent_at[pair],
        acked_at=wire.acked_at[pair],
        present_until=_present_until(view_u, view_s, view_e, n_units, limit),
    )

    return _History(
        run_start=run_start,
        run_end=run_end,
        grace_s=grace_s,
        user_ids=np.asarray(user_ids, dtype=object),
        message_ids=np.asarray(message_ids, dtype=object),
        conversation_ids=np.asarray(conv_ids, dtype=object),
        client_ids=client_ids,
        n_clients=n_clients,
        n_sent=len(ok),
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
        pairs={"wire": wire, "user_view": user_view},
        deliveries=deliveries,
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
    d, p = h.deliveries[level], h.pairs[level]
    key = d.message * max(p.n_units, 1) + d.unit
    order = np.lexsort((d.t, key))
    starts = np.flatnonzero(_run_starts(key[order]))
    copies = np.diff(np.r_[starts, len(key)]).astype(np.int64)
    first = order[starts]  # the first delivery of each delivered pair
    delivered_key = key[first]
    status = d.status[first]

    # Real-time order, per (recipient unit, conversation), over first deliveries of known
    # messages: each tab's view has its own order to keep.
    known = np.flatnonzero(status >= _UNKNOWN)
    fk = first[known]
    # Conversation codes start at -1 (a send that named none), hence the + 1.
    group = d.unit[fk] * (len(h.conversation_ids) + 1) + d.conversation[fk] + 1
    reordered_delivered = np.zeros(len(first), dtype=bool)
    reordered_delivered[known] = _reordered(group, d.t[fk], d.sent_at[fk], d.acked_at[fk])

    # Join ok pairs with delivered pairs; both key arrays are sorted and unique.
    found, pos = _find(delivered_key, p.key)
    is_ok_pair, _ = _find(p.key, delivered_key)
    n_pairs = len(p.key)
    deliveries = np.zeros(n_pairs, dtype=np.int64)
    deliveries[found] = copies[pos[found]]
    first_received_at = np.full(n_pairs, np.nan)
    first_received_at[found] = d.t[first[pos[found]]]
    reordered = np.zeros(n_pairs, dtype=bool)
    reordered[found] = reordered_delivered[pos[found]]

    present = p.present_until[p.unit]
    expected = (p.acked_at <= h.run_end - h.grace_s) & (present >= p.acked_at)
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


def _summarise(h: _History, level: Level, r: _LevelResult, late_ms: float) -> dict[str, Any]:
    p = h.pairs[level]
    delivered = r.expected & (r.deliveries > 0)
    lost = r.expected & (r.deliveries == 0)
    latency_ms = (r.first_received_at - p.sent_at) * 1000.0
    lost_idx = np.flatnonzero(lost)
    lost_idx = lost_idx[np.lexsort((p.key[lost_idx], p.sent_at[lost_idx]))]
    lost_idx = lost_idx[:LOST_EXAMPLES]
    recovered = r.status == _UNKNOWN
    sent = h.n_sent
    summary: dict[str, Any] = {
        "sent": sent,
        "expected": int(r.expected.sum()),
        "delivered": int(delivered.sum()),
        "lost": int(lost.sum()),
        # NaN latencies (undelivered pairs) compare False, so only delivered pairs can be late.
        "late": int((delivered & (latency_ms > late_ms)).sum()),
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
        "latency_ms": _quantiles(latency_ms[delivered]),
        # [messageId, user] on the wire; [messageId, user, client] in the user view.
        "lost_examples": [
            [str(h.message_ids[p.message[i]]), str(h.user_ids[p.user[i]])]
            + ([str(h.client_ids[p.unit[i]])] if level == "user_view" else [])
            for i in lost_idx  # at most LOST_EXAMPLES
        ],
    }
    if level == "user_view":
        summary["clients"] = h.n_clients
    per_message = "notifications_per_message" if level == "wire" else "views_per_message"
    summary[per_message] = r.events / sent if sent else None
    summary["valid"] = summary["lost"] == 0 and summary["unexpected"] == 0
    return summary


def _float_or_none(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def check(
    events: pd.DataFrame, *, grace_s: float = 5.0, late_ms: float = LATE_MS
) -> dict[str, Any]:
    """Judge a run's recorded client events; returns a JSON-serialisable results dict.

    ``grace_s``: a recipient must have been present at least this long before the run's end for
    a delivery to be expected. ``late_ms``: a delivered expected pair whose latency exceeds it is
    counted as ``late``. See the module docstring for every count's definition.
    """
    h = _history(events, grace_s)
    return {
        "run": {
            "start": _float_or_none(h.run_start),
            "end": _float_or_none(h.run_end),
            "grace_s": float(grace_s),
            "late_ms": float(late_ms),
        },
        "sends": h.sends,
        "streams": h.streams,
        "wire": _summarise(h, "wire", _analyse(h, "wire"), late_ms),
        "user_view": _summarise(h, "user_view", _analyse(h, "user_view"), late_ms),
    }


def per_message_table(
    events: pd.DataFrame,
    *,
    grace_s: float = 5.0,
    level: Level = "wire",
    late_ms: float = LATE_MS,
) -> pd.DataFrame:
    """One row per (ok message, recipient) pair at one level, for plots and notebooks.

    Columns: messageId, recipient (the user), sender, conversationId, sent_at, acked_at,
    expected, deliveries (copies received), first_received_at, latency_ms, lost, late,
    reordered; in the user view also client, as each client of a recipient is a row of its own.
    """
    h = _history(events, grace_s)
    p = h.pairs[level]
    r = _analyse(h, level)
    latency_ms = (r.first_received_at - p.sent_at) * 1000.0
    columns: dict[str, Any] = {
        "messageId": h.message_ids[p.message] if len(p.key) else [],
        "recipient": h.user_ids[p.user] if len(p.key) else [],
    }
    if level == "user_view":
        columns["client"] = h.client_ids[p.unit] if len(p.key) else []
    columns |= {
        "sender": h.user_ids[p.sender] if len(p.key) else [],
        "conversationId": h.conversation_ids[p.conversation] if len(p.key) else [],
        "sent_at": p.sent_at,
        "acked_at": p.acked_at,
        "expected": r.expected,
        "deliveries": r.deliveries,
        "first_received_at": r.first_received_at,
        "latency_ms": latency_ms,
        "lost": r.expected & (r.deliveries == 0),
        "late": r.expected & (r.deliveries > 0) & (latency_ms > late_ms),
        "reordered": r.reordered,
    }
    return pd.DataFrame(columns)
