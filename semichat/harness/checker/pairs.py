"""The pairs a level judges: (ok message, recipient unit), each once, sorted by key.

On the wire the unit is each user in the message's ``recipients`` (the sender included); in the
user view it is each client of such a user, a tab or page, so three tabs are three pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semichat.harness.checker.arrays import FloatArray, IntArray
from semichat.harness.checker.codes import Clients, Messages, Users
from semichat.harness.checker.sends import MessageFacts


@dataclass(frozen=True)
class Pairs:
    """One level's ok pairs; ``key`` is message * n_units + unit, sorted and unique."""

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

    def take(self, i: IntArray, unit: IntArray, n_units: int, present: FloatArray) -> Pairs:
        """Rows ``i`` of these pairs, each for a unit of another level."""
        return Pairs(
            n_units=n_units,
            key=self.message[i] * n_units + unit,
            message=self.message[i],
            user=self.user[i],
            unit=unit,
            sender=self.sender[i],
            conversation=self.conversation[i],
            sent_at=self.sent_at[i],
            acked_at=self.acked_at[i],
            present_until=present,
        )


def wire_pairs(users: Users, messages: Messages, facts: MessageFacts, present: FloatArray) -> Pairs:
    """Every (ok message, recipient user) pair once; a recipient listed twice is one pair."""
    row = users.recipient_row
    key, first = np.unique(messages.ok[row] * users.n + users.recipient, return_index=True)
    row = row[first]
    message = messages.ok[row]
    user = key % max(users.n, 1)
    return Pairs(
        n_units=users.n,
        key=key,
        message=message,
        user=user,
        unit=user,
        sender=users.sender[row],
        conversation=facts.conversation[message],
        sent_at=facts.sent_at[message],
        acked_at=facts.acked_at[message],
        present_until=present,
    )


def user_view_pairs(wire: Pairs, clients: Clients, present: FloatArray) -> Pairs:
    """Each wire pair once per client of its recipient (a ragged repeat), sorted by key."""
    by_owner = np.argsort(clients.user, kind="stable")
    per_user = np.bincount(clients.user, minlength=wire.n_units)
    owner_start = np.cumsum(per_user) - per_user
    reps = per_user[wire.user]
    pair = np.repeat(np.arange(len(wire.key)), reps)
    within = np.arange(len(pair)) - np.repeat(np.cumsum(reps) - reps, reps)
    client = by_owner[owner_start[wire.user[pair]] + within]
    order = np.argsort(wire.message[pair] * clients.n + client, kind="stable")
    return wire.take(pair[order], client[order], clients.n, present)
