"""The delivery checker: a pure function from the clients' recorded events to a verdict.

It trusts only what clients recorded (:mod:`semichat.harness.events`), never the server, and
uses the vocabulary of Jepsen's queue checker and Maelstrom's broadcast checker. It judges two
levels separately, each with its own unit of recipient:

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
earlier line of the log). An ok send without ``ackedAt`` is taken as acknowledged at its ``t``.
A stream opens at its first ``connect`` (which names its user and client) and closes at its last
``disconnect`` (never before it opened); a ``disconnect`` of a stream never connected is
ignored, and so is a delivery that names no user.

Everything is vectorised: the cost is a few sorts and hash look-ups over the events, with no
Python loop over events or messages. The steps, each a module of its own:

- :mod:`.log`: the events by type, the run's bounds; :mod:`.codes`: identifiers as integers;
- :mod:`.sends`: what the sends say about each message; :mod:`.deliveries`: each delivery
  attributed to its recipient unit and its send (idempotency keys included);
- :mod:`.presence`: when each unit was present; :mod:`.pairs`: the pairs each level judges;
  :mod:`.history`: all of the above, built once;
- :mod:`.anomalies`: one function per count (expected, lost, late, duplicated, unexpected,
  recovered, misdirected, reordered); :mod:`.summary`: the counts as ``check`` reports them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from semichat.harness.checker.anomalies import LATE_MS, Judgement, judge
from semichat.harness.checker.history import History, history
from semichat.harness.checker.log import LEVEL_EVENT, LEVELS, Level
from semichat.harness.checker.summary import (
    LATENCY_QUANTILES,
    LOST_EXAMPLES,
    pair_table,
    summarise,
)

__all__ = [
    "LATENCY_QUANTILES",
    "LATE_MS",
    "LEVELS",
    "LEVEL_EVENT",
    "LOST_EXAMPLES",
    "Level",
    "check",
    "check_with_pairs",
    "per_message_table",
]


def _float_or_none(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def check(
    events: pd.DataFrame, *, grace_s: float = 5.0, late_ms: float = LATE_MS
) -> dict[str, Any]:
    """Judge a run's recorded client events; returns a JSON-serialisable results dict.

    ``grace_s``: a recipient must have been present at least this long before the run's end for
    a delivery to be expected. ``late_ms``: a delivered expected pair whose latency exceeds it is
    counted as ``late``. See the package docstring for every count's definition.
    """
    h = history(events, grace_s)
    return _results(h, grace_s, late_ms, {level: judge(h, level, late_ms) for level in LEVELS})


def _results(
    h: History, grace_s: float, late_ms: float, judged: dict[Level, Judgement]
) -> dict[str, Any]:
    return {
        "run": {
            "start": _float_or_none(h.run_start),
            "end": _float_or_none(h.run_end),
            "grace_s": float(grace_s),
            "late_ms": float(late_ms),
        },
        "sends": h.sends,
        "streams": h.streams,
        **{level: summarise(h, level, judged[level]) for level in LEVELS},
    }


def check_with_pairs(
    events: pd.DataFrame, *, grace_s: float = 5.0, late_ms: float = LATE_MS
) -> tuple[dict[str, Any], dict[Level, pd.DataFrame]]:
    """`check`'s results and `per_message_table`'s table of each level, judged once (the live
    statistics of a running Locust need both every few seconds)."""
    h = history(events, grace_s)
    judged = {level: judge(h, level, late_ms) for level in LEVELS}
    results = _results(h, grace_s, late_ms, judged)
    return results, {level: pair_table(h, level, judged[level]) for level in LEVELS}


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
    h = history(events, grace_s)
    return pair_table(h, level, judge(h, level, late_ms))
