"""Requests and dollars per month, per strategy, from measured request rates.

The rates come from sweeps (`summary.csv`): SQS requests per idle connected user per minute
(the `idle` scenario) and per message (the `chat` scenario). Activity and prices are
parameters. DynamoDB units per message follow the server's code path (`DYNAMODB_UNITS`), and
are checked against the units a run counted (`tests/test_capacity_model.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

MINUTES_PER_MONTH = 30 * 24 * 60


@dataclass(frozen=True)
class Prices:
    """US East (N. Virginia) list prices, dollars per million. Sources, read 2026-11-28:
    SQS: aws.amazon.com/sqs/pricing (as summarised by cloudburn.io, 2026-03, and
    factualminds.com, 2026-06): standard $0.40, FIFO $0.50 per million requests (each 64 KB
    chunk one request, empty receives billed), first million a month free.
    DynamoDB on-demand: aws.amazon.com/dynamodb/pricing/on-demand (as summarised by
    airbyte.com): $0.625 per million write request units, $0.125 per million read request units;
    transactional requests cost twice. Check the pricing pages before quoting a figure."""

    sqs_standard: float = 0.40
    sqs_fifo: float = 0.50
    sqs_free_requests: float = 1_000_000
    dynamodb_write: float = 0.625
    dynamodb_read: float = 0.125


@dataclass(frozen=True)
class Activity:
    """How users use the chat: messages each sends a day, hours a day with a stream open, and
    recipients per message (the conversation's size; the sender's other tabs hear too)."""

    messages_per_user_day: float = 50.0
    connected_hours_per_day: float = 8.0
    recipients_per_message: float = 3.0


# Per message, as the server's code path makes and prices them (units from item sizes and read
# consistency, as the server now counts them: `semichat/aws/usage.py`, `results.json`'s
# `backend`): the transactional put of message and idempotency record (2 items under 1 KB, x2),
# the `notified` mark (1, group-committed), no participants read (`ChatService` caches a
# conversation's participants per process), and one history read per recipient: strongly
# consistent (`store.history`), a catch-up page of 6 messages of about 280 bytes, 1 unit. It
# was priced 0.5, as eventually consistent, with 1 unit of participants read per message.
# A first page at connect (51 messages, about 14 KB) costs 4 units; `semichat.model` counts it.
DYNAMODB_UNITS = {
    "write_per_message": 2 * 2 + 1,
    "read_per_message": 0.0,
    "read_per_recipient": 1.0,
    # The `instance` strategy's connection registry: a put at connect and a delete at
    # disconnect (a connection a day, say), and its heartbeat: each connected user's entry
    # rewritten every REGISTRY_TTL_SECONDS / 3 = 30 s by default (BatchWriteItem bills per
    # item), 120 an hour; and one strongly consistent query per send per recipient (1 unit).
    "registry_write_per_connected_hour": 3600 / 30,
    "registry_write_per_user_day": 2,
    "registry_read_per_recipient": 1.0,
}


def monthly_cost(
    rates: pd.DataFrame,
    users: Sequence[int],
    activity: Activity = Activity(),
    prices: Prices = Prices(),
    fifo: Mapping[str, bool] | None = None,
    registry: Mapping[str, bool] | None = None,
) -> pd.DataFrame:
    """One row per (strategy, users): requests and dollars a month.

    `rates` has one row per strategy (index `routing`) with columns `sqs_per_user_minute`
    (idle) and `sqs_per_message`. `fifo` and `registry` name the strategies billed at the
    FIFO price and those paying for a connection registry (default: by name)."""
    fifo = fifo or {r: r == "fifo" for r in rates.index}
    registry = registry or {r: r == "instance" for r in rates.index}
    rows = []
    for routing, rate in rates.iterrows():
        for n in users:
            rows.append(
                _one(str(routing), rate, n, activity, prices, fifo[routing], registry[routing])
            )
    return pd.DataFrame(rows)


def _one(
    routing: str,
    rate: pd.Series,
    users: int,
    a: Activity,
    p: Prices,
    fifo: bool,
    registry: bool,
) -> dict[str, float | str | int]:
    connected_minutes = users * a.connected_hours_per_day * 60 * 30
    messages = users * a.messages_per_user_day * 30
    sqs = rate["sqs_per_user_minute"] * connected_minutes + rate["sqs_per_message"] * messages
    sqs_price = p.sqs_fifo if fifo else p.sqs_standard
    sqs_dollars = max(0.0, sqs - p.sqs_free_requests) / 1e6 * sqs_price
    u = DYNAMODB_UNITS
    writes = messages * u["write_per_message"]
    reads = messages * (u["read_per_message"] + a.recipients_per_message * u["read_per_recipient"])
    if registry:
        hours = users * a.connected_hours_per_day * 30
        writes += hours * u["registry_write_per_connected_hour"]
        writes += users * 30 * u["registry_write_per_user_day"]
        reads += messages * a.recipients_per_message * u["registry_read_per_recipient"]
    dynamodb_dollars = writes / 1e6 * p.dynamodb_write + reads / 1e6 * p.dynamodb_read
    return {
        "routing": routing,
        "users": users,
        "sqs_requests": sqs,
        "sqs_dollars": sqs_dollars,
        "dynamodb_write_units": writes,
        "dynamodb_read_units": reads,
        "dynamodb_dollars": dynamodb_dollars,
        "dollars": sqs_dollars + dynamodb_dollars,
        "dollars_per_user": (sqs_dollars + dynamodb_dollars) / users,
    }


def measured_rates(idle: pd.DataFrame, chat: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: the median idle SQS requests per user-minute (from an `idle` sweep), and
    the median SQS requests per message of a `chat` sweep net of that idle cost (a chat run's
    users poll while they chat: of its requests R over U user-minutes, idle * U are not the
    messages'), over runs that were judged."""
    idle = idle[idle["judged"]]
    # The steady window's rate when the runs measured one (every stream open), else the run's.
    column = "sqs_per_stream_minute_steady"
    steady = idle[column] if column in idle else pd.Series(float("nan"), index=idle.index)
    per_minute = steady.fillna(idle["sqs_per_user_minute"])
    idle_rate = per_minute.groupby(idle["routing"]).median()
    judged = chat[chat["judged"]]
    baseline = judged["routing"].map(idle_rate)
    share = (1 - baseline / judged["sqs_per_user_minute"]).clip(lower=0)
    chat_rate = (judged["sqs_per_message"] * share).groupby(judged["routing"]).median()
    return pd.DataFrame({"sqs_per_user_minute": idle_rate, "sqs_per_message": chat_rate}).dropna()
