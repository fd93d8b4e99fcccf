"""A level's judgement as the JSON-serialisable counts ``check`` reports, and as a table."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from semichat.harness.checker.anomalies import Judgement
from semichat.harness.checker.arrays import BoolArray, FloatArray
from semichat.harness.checker.history import History
from semichat.harness.checker.log import Level

LATENCY_QUANTILES = {"min": 0.0, "p50": 0.5, "p95": 0.95, "p99": 0.99, "max": 1.0}
LOST_EXAMPLES = 10


def count(mask: BoolArray) -> int:
    return int(mask.sum())


def quantiles(values_ms: FloatArray) -> dict[str, float | int | None]:
    """Latency quantiles (numpy's linear interpolation), None when there is no value."""
    out: dict[str, float | int | None] = dict.fromkeys(LATENCY_QUANTILES)
    if len(values_ms):
        qs = np.quantile(values_ms, list(LATENCY_QUANTILES.values()))
        out = {name: float(q) for name, q in zip(LATENCY_QUANTILES, qs, strict=True)}
    out["count"] = len(values_ms)
    return out


def lost_examples(h: History, level: Level, j: Judgement) -> list[list[str]]:
    """Up to ten lost pairs, earliest send first: ``[messageId, user]`` on the wire and
    ``[messageId, user, client]`` in the user view."""
    p = j.pairs
    lost = np.flatnonzero(j.lost)
    lost = lost[np.lexsort((p.key[lost], p.sent_at[lost]))][:LOST_EXAMPLES]
    return [
        [str(h.message_ids[p.message[i]]), str(h.user_ids[p.user[i]])]
        + ([str(h.client_ids[p.unit[i]])] if level == "user_view" else [])
        for i in lost  # at most LOST_EXAMPLES
    ]


def summarise(h: History, level: Level, j: Judgement) -> dict[str, Any]:
    """One level's counts, as defined in the package docstring."""
    r = j.receipts
    summary: dict[str, Any] = {
        "sent": h.n_sent,
        "expected": count(j.expected),
        "delivered": count(j.delivered),
        "lost": count(j.lost),
        "late": count(j.late),
        "duplicated": count(j.duplicated),
        "duplicate_copies": int((r.copies - 1).sum()),
        "reordered": count(j.reordered),
        "unexpected": count(j.unexpected),
        "recovered": count(j.recovered),
        "recovered_messages": len(np.unique(r.message[j.recovered])),
        "not_expected": count(~j.expected),
        "not_expected_delivered": count(~j.expected & (j.deliveries > 0)),
        "misdirected": count(j.misdirected),
        "events": j.events,
        "latency_ms": quantiles(j.latency_ms[j.delivered]),
        "lost_examples": lost_examples(h, level, j),
    }
    if level == "user_view":
        summary["clients"] = h.n_clients
    per_message = "notifications_per_message" if level == "wire" else "views_per_message"
    summary[per_message] = j.events / h.n_sent if h.n_sent else None
    summary["valid"] = summary["lost"] == 0 and summary["unexpected"] == 0
    return summary


def _names(ids: Any, codes: Any) -> Any:
    """The names behind codes; a code of -1 (the record named none) is None, not the last name."""
    names = np.full(len(codes), None, dtype=object)
    named = codes >= 0
    names[named] = ids[codes[named]]
    return names


def pair_table(h: History, level: Level, j: Judgement) -> pd.DataFrame:
    """One row per ok pair of a level (see ``per_message_table``)."""
    p = j.pairs
    columns: dict[str, Any] = {
        "messageId": _names(h.message_ids, p.message),
        "recipient": _names(h.user_ids, p.user),
    }
    if level == "user_view":
        columns["client"] = _names(h.client_ids, p.unit)
    columns |= {
        "sender": _names(h.user_ids, p.sender),
        "conversationId": _names(h.conversation_ids, p.conversation),
        "sent_at": p.sent_at,
        "acked_at": p.acked_at,
        "expected": j.expected,
        "deliveries": j.deliveries,
        "first_received_at": j.first_received_at,
        "latency_ms": j.latency_ms,
        "lost": j.lost,
        "late": j.late,
        "reordered": j.reordered_pair,
    }
    return pd.DataFrame(columns)
