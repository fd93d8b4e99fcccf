"""The history: the recorded events coded as integers, so every later step is a numpy operation.

It holds, per level, the pairs to judge and the deliveries that judge them, and the names to
print them with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from semichat.harness.checker.arrays import ObjectArray
from semichat.harness.checker.codes import code_clients, code_messages, code_users
from semichat.harness.checker.deliveries import Deliveries, deliveries
from semichat.harness.checker.log import EventLog, Level, split_log
from semichat.harness.checker.pairs import Pairs, user_view_pairs, wire_pairs
from semichat.harness.checker.presence import streams, view_presence, view_spans, wire_presence
from semichat.harness.checker.sends import message_facts
from semichat.harness.events import FAILED, OK, UNKNOWN


@dataclass(frozen=True)
class History:
    """The run's coded events: its bounds, names, counts, and per level pairs and deliveries."""

    run_start: float
    run_end: float
    grace_s: float
    user_ids: ObjectArray
    message_ids: ObjectArray
    conversation_ids: ObjectArray
    client_ids: ObjectArray  # recorded clients, then one stand-in per clientless user
    n_clients: int  # recorded clients only
    n_sent: int
    sends: dict[str, int]
    streams: dict[str, int]
    pairs: dict[Level, Pairs]
    deliveries: dict[Level, Deliveries]

    @property
    def limit(self) -> float:
        """The last moment at which a recipient's presence makes a pair expected."""
        return self.run_end - self.grace_s


def send_counts(log: EventLog) -> dict[str, int]:
    """Sends attempted, and how many ended ok, failed and unknown."""
    outcome = log.sends["outcome"].to_numpy(dtype=object)
    return {
        "attempted": len(log.sends),
        "ok": int((outcome == OK).sum()),
        "failed": int((outcome == FAILED).sum()),
        "unknown": int((outcome == UNKNOWN).sum()),
    }


def stream_counts(log: EventLog, connect_users: np.ndarray) -> dict[str, int]:
    """Connects, disconnects, and how many distinct users connected."""
    return {
        "connects": len(log.connects),
        "disconnects": len(log.disconnects),
        "users": len(np.unique(connect_users[connect_users >= 0])),
    }


def history(events: pd.DataFrame, grace_s: float) -> History:
    """Code the recorded events and build both levels' pairs and deliveries."""
    log = split_log(events)
    limit = log.run_end - grace_s
    users = code_users(log)
    clients = code_clients(log, users)
    messages = code_messages(log)
    facts = message_facts(log, messages)
    opened = streams(log, users, clients)
    wire = wire_pairs(users, messages, facts, wire_presence(opened, users.n, limit))
    present = view_presence(opened, view_spans(log, clients), clients.n, limit)
    return History(
        run_start=log.run_start,
        run_end=log.run_end,
        grace_s=grace_s,
        user_ids=users.ids,
        message_ids=messages.ids,
        conversation_ids=messages.conversation_ids,
        client_ids=clients.ids,
        n_clients=clients.n_recorded,
        n_sent=len(log.ok),
        sends=send_counts(log),
        streams=stream_counts(log, users.connect),
        pairs={"wire": wire, "user_view": user_view_pairs(wire, clients, present)},
        deliveries=deliveries(log, users, clients, messages, facts),
    )
