"""One integer code space per identifier (users, clients, messages, conversations).

Each space is built by one hash pass over every table that names the identifier, so that later
steps join tables by comparing integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from semichat.harness.checker.arrays import IntArray, ObjectArray, as_strings
from semichat.harness.checker.log import LEVELS, EventLog, Level


@dataclass(frozen=True)
class Users:
    """User codes (-1: no user) of the ok sends' recipients and senders, deliveries and connects."""

    ids: ObjectArray
    recipient: IntArray  # one per (ok send, recipient) row ...
    recipient_row: IntArray  # ... and the row of EventLog.ok it belongs to
    sender: IntArray  # per row of EventLog.ok
    delivery: dict[Level, IntArray]
    connect: IntArray

    @property
    def n(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Clients:
    """The user view's units: recorded clients, then one stand-in per user that recorded none."""

    ids: ObjectArray
    user: IntArray  # each client's user
    n_recorded: int  # the stand-ins, never present, are not counted as clients
    connect: IntArray  # per connect event (-1: it names no user)
    view: IntArray  # per view event (-1: it names no user)

    @property
    def n(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Messages:
    """Message codes; ``n`` (one past the last message) stands for "no messageId"."""

    ids: ObjectArray
    send: IntArray  # per send event
    ok: IntArray  # per row of EventLog.ok
    delivery: dict[Level, IntArray]
    conversation_ids: ObjectArray
    send_conversation: IntArray  # per send event (-1: it named none)

    @property
    def n(self) -> int:
        return len(self.ids)


def _split(codes: IntArray, lengths: list[int]) -> list[IntArray]:
    return np.split(codes.astype(np.int64), np.cumsum(lengths)[:-1])


def code_users(log: EventLog) -> Users:
    """Code every user the ok sends, the deliveries and the connects name."""
    recipients = log.ok["recipients"].explode().dropna()
    named = [
        as_strings(recipients),
        as_strings(log.ok["user"]),
        *(as_strings(log.deliveries[lv]["user"]) for lv in LEVELS),
        as_strings(log.connects["user"]),
    ]
    codes, ids = pd.factorize(np.concatenate(named), use_na_sentinel=True)
    recipient, sender, wire, view, connect = _split(codes, [len(a) for a in named])
    return Users(
        ids=np.asarray(ids, dtype=object),
        recipient=recipient,
        recipient_row=recipients.index.to_numpy(dtype=np.int64),
        sender=sender,
        delivery={"wire": wire, "user_view": view},
        connect=connect,
    )


def client_names(events: pd.DataFrame) -> ObjectArray:
    """Each event's client; an event naming none stands for its user's one client (old runs)."""
    return as_strings(events["client"].where(events["client"].notna(), events["user"]))


def code_clients(log: EventLog, users: Users) -> Clients:
    """Code the clients that connects and views name, each a (user, client name) pair.

    A hand-built name like "p1" is unique only within its user. A user that recorded no client
    gets a stand-in, never present, so that its pairs count as not expected (as on the wire)
    rather than vanishing.
    """
    name_codes, names = pd.factorize(
        np.concatenate([client_names(log.connects), client_names(log.views)])
    )
    owner = np.concatenate([users.connect, users.delivery["user_view"]])
    named = (owner >= 0) & (name_codes >= 0)
    combo = owner * (len(names) + 1) + name_codes
    found, inverse = np.unique(combo[named], return_inverse=True)
    codes = np.full(len(combo), -1, dtype=np.int64)
    codes[named] = inverse
    recorded_user = found // (len(names) + 1)
    clientless = np.setdiff1d(np.arange(users.n), recorded_user)
    ids = [np.asarray(names, dtype=object)[found % (len(names) + 1)], users.ids[clientless]]
    return Clients(
        ids=np.concatenate(ids).astype(object),
        user=np.concatenate([recorded_user, clientless]).astype(np.int64),
        n_recorded=len(found),
        connect=codes[: len(log.connects)],
        view=codes[len(log.connects) :],
    )


def code_messages(log: EventLog) -> Messages:
    """Code the messageIds of sends and deliveries, and the conversations of sends."""
    named = [as_strings(log.sends["messageId"])]
    named += [as_strings(log.deliveries[lv]["messageId"]) for lv in LEVELS]
    codes, ids = pd.factorize(np.concatenate(named))
    codes = np.where(codes < 0, len(ids), codes)  # the sentinel: no messageId
    send, wire, view = _split(codes, [len(a) for a in named])
    conversations, conversation_ids = pd.factorize(as_strings(log.sends["conversationId"]))
    return Messages(
        ids=np.asarray(ids, dtype=object),
        send=send,
        ok=pd.Index(ids).get_indexer(as_strings(log.ok["messageId"])).astype(np.int64),
        delivery={"wire": wire, "user_view": view},
        conversation_ids=np.asarray(conversation_ids, dtype=object),
        send_conversation=conversations.astype(np.int64),
    )
