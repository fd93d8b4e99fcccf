"""What the sends say about each message: its status, when it was sent and acknowledged, where.

A message's status is the highest of its sends' outcomes (ok over unknown over failed). Its
``t`` and conversation are its earliest ok send's, else its earliest unknown send's (ties: the
earlier line of the log), so that the verdict never depends on the order of the log.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from semichat.harness.checker.arrays import FloatArray, IntArray, as_strings, earliest_per_code
from semichat.harness.checker.codes import Messages
from semichat.harness.checker.log import EventLog
from semichat.harness.events import FAILED, OK, UNKNOWN

# A message's status; the highest applies when several sends share a messageId.
NO_SEND, FAILED_SEND, UNKNOWN_SEND, OK_SEND = 0, 1, 2, 3

StatusArray = npt.NDArray[np.int8]


@dataclass(frozen=True)
class MessageFacts:
    """Per message code (index ``Messages.n``, "no messageId", has no send and no facts)."""

    status: StatusArray
    sent_at: FloatArray  # NaN: no ok or unknown send
    acked_at: FloatArray  # NaN: no ok send; an ok send without ackedAt is acked at its t
    conversation: IntArray  # -1: none known


def send_status(outcome: npt.NDArray[np.object_]) -> StatusArray:
    """Each send's outcome as a status code."""
    conditions = [outcome == OK, outcome == UNKNOWN, outcome == FAILED]
    return np.select(conditions, [OK_SEND, UNKNOWN_SEND, FAILED_SEND], NO_SEND).astype(np.int8)


def message_status(log: EventLog, messages: Messages) -> StatusArray:
    """Each message's status: the highest outcome among its sends."""
    status = np.zeros(messages.n + 1, dtype=np.int8)
    np.maximum.at(status, messages.send, send_status(log.sends["outcome"].to_numpy(dtype=object)))
    status[messages.n] = NO_SEND
    return status


def message_facts(log: EventLog, messages: Messages) -> MessageFacts:
    """Status, send start, acknowledgement and conversation of every message."""
    n = messages.n
    sent_at, acked_at = np.full(n + 1, np.nan), np.full(n + 1, np.nan)
    conversation = np.full(n + 1, -1, dtype=np.int64)
    # The earliest unknown send first, so that an ok send of the same message overwrites it.
    unknown = np.flatnonzero(log.sends["outcome"].to_numpy(dtype=object) == UNKNOWN)
    t = log.sends["t"].to_numpy()
    first = unknown[earliest_per_code(messages.send[unknown], t[unknown])]
    sent_at[messages.send[first]] = t[first]
    conversation[messages.send[first]] = messages.send_conversation[first]
    ok_t = log.ok["t"].to_numpy()
    ok_acked = log.ok["ackedAt"].to_numpy()
    sent_at[messages.ok] = ok_t
    acked_at[messages.ok] = np.where(np.isnan(ok_acked), ok_t, ok_acked)
    conversation[messages.ok] = ok_conversations(log, messages)
    sent_at[n], conversation[n] = np.nan, -1
    return MessageFacts(message_status(log, messages), sent_at, acked_at, conversation)


def ok_conversations(log: EventLog, messages: Messages) -> IntArray:
    """The conversation code of each row of ``EventLog.ok``."""
    index = pd.Index(messages.conversation_ids)
    return index.get_indexer(as_strings(log.ok["conversationId"])).astype(np.int64)
