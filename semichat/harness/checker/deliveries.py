"""Each delivery attributed to its recipient unit and to the send it reports.

Sends whose outcome is unknown usually have no messageId; their idempotency key names them. A
delivery event may carry the key itself, and any delivery event carrying both a messageId and
the key of an unknown send bridges that messageId to the send, so every other delivery of the
message (a wire notification has no text to parse the key from) is matched to it too. An ok
send of the messageId still wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from semichat.harness.checker.arrays import FloatArray, IntArray, as_strings
from semichat.harness.checker.codes import Clients, Messages, Users
from semichat.harness.checker.log import LEVELS, EventLog, Level
from semichat.harness.checker.sends import UNKNOWN_SEND, MessageFacts, StatusArray


@dataclass(frozen=True)
class Deliveries:
    """One level's delivery events that name a user, with what their sends say."""

    unit: IntArray  # the user (wire) or the client (user view) that received it
    message: IntArray  # message code; Messages.n for "no messageId"
    t: FloatArray
    status: StatusArray
    sent_at: FloatArray
    acked_at: FloatArray
    conversation: IntArray


@dataclass(frozen=True)
class KeyedSends:
    """Unknown-outcome sends that carry an idempotency key, the first line of each key."""

    keys: pd.Index
    t: FloatArray
    conversation: IntArray


def keyed_sends(log: EventLog, messages: Messages) -> KeyedSends:
    """The unknown sends a delivery can name by idempotency key."""
    unknown = log.unknown[log.unknown["idempotencyKey"].notna()]
    unknown = unknown.drop_duplicates("idempotencyKey")
    conversations = pd.Index(messages.conversation_ids)
    return KeyedSends(
        keys=pd.Index(as_strings(unknown["idempotencyKey"])),
        t=unknown["t"].to_numpy(),
        conversation=conversations.get_indexer(as_strings(unknown["conversationId"])).astype(
            np.int64
        ),
    )


def named_sends(log: EventLog, messages: Messages, keyed: KeyedSends) -> dict[Level, IntArray]:
    """Per delivery, the keyed send it names (-1: none), by its own key or by a bridge."""
    message = np.concatenate([messages.delivery[lv] for lv in LEVELS])
    own_key = np.full(len(message), -1, dtype=np.int64)
    if len(keyed.keys):
        carried = np.concatenate(
            [as_strings(log.deliveries[lv]["idempotencyKey"]) for lv in LEVELS]
        )
        own_key = keyed.keys.get_indexer(carried).astype(np.int64)
    bridge = np.full(messages.n + 1, -1, dtype=np.int64)
    # Should two keys claim one messageId (a corrupt log), the later unknown send wins: any
    # fixed rule keeps the result a function of the events, not of their order.
    np.maximum.at(bridge, message[own_key >= 0], own_key[own_key >= 0])
    bridge[messages.n] = -1  # "no messageId" is not one message
    named = np.where(own_key >= 0, own_key, bridge[message])
    wire = len(messages.delivery["wire"])
    return {"wire": named[:wire], "user_view": named[wire:]}


def attribute(
    units: IntArray,
    events: pd.DataFrame,
    message: IntArray,
    named: IntArray,
    facts: MessageFacts,
    keyed: KeyedSends,
) -> Deliveries:
    """One level's deliveries with their sends' facts; a keyed send counts for a message that
    no ok or unknown send reported. A delivery that names no user cannot be paired: dropped."""
    keep = units >= 0
    units, message, named = units[keep], message[keep], named[keep]
    status, sent_at = facts.status[message], facts.sent_at[message]
    conversation = facts.conversation[message]
    by_key = (named >= 0) & (status < UNKNOWN_SEND)
    if len(keyed.keys):
        j = np.where(by_key, named, 0)
        status = np.where(by_key, UNKNOWN_SEND, status).astype(np.int8)
        sent_at = np.where(by_key, keyed.t[j], sent_at)
        conversation = np.where(by_key, keyed.conversation[j], conversation)
    return Deliveries(
        unit=units,
        message=message,
        t=events["t"].to_numpy()[keep],
        status=status,
        sent_at=sent_at,
        acked_at=facts.acked_at[message],
        conversation=conversation,
    )


def deliveries(
    log: EventLog, users: Users, clients: Clients, messages: Messages, facts: MessageFacts
) -> dict[Level, Deliveries]:
    """Both levels' deliveries: to users on the wire, to clients in the user view."""
    keyed = keyed_sends(log, messages)
    named = named_sends(log, messages, keyed)
    units = {"wire": users.delivery["wire"], "user_view": clients.view}
    return {
        lv: attribute(units[lv], log.deliveries[lv], messages.delivery[lv], named[lv], facts, keyed)
        for lv in LEVELS
    }
