"""Hand-built histories that pin down what mutation testing found unpinned in the checker.

Each test asserts observable behaviour of ``check`` and ``per_message_table`` at a boundary or in
a corner (an empty run, a presence starting exactly at ``end - grace_s``, the table's columns)
that the scenarios of ``test_checker.py`` do not reach.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from semichat.harness.checker import check, per_message_table
from semichat.harness.checker.codes import code_clients, code_messages, code_users
from semichat.harness.checker.log import split_log
from semichat.harness.events import empty_events, events_frame

from .test_checker import END, Event, base, connect, disconnect, end, note, run, send, view

WIRE_COLUMNS = [
    "messageId",
    "recipient",
    "sender",
    "conversationId",
    "sent_at",
    "acked_at",
    "expected",
    "deliveries",
    "first_received_at",
    "latency_ms",
    "lost",
    "late",
    "reordered",
]
USER_VIEW_COLUMNS = [*WIRE_COLUMNS[:2], "client", *WIRE_COLUMNS[2:]]


def test_an_empty_run_has_no_bounds() -> None:
    for frame in (pd.DataFrame(), empty_events(), events_frame([])):
        bounds = check(frame)["run"]
        assert bounds == {"start": None, "end": None, "grace_s": 5.0, "late_ms": 5000.0}
    assert run([connect("a", 3.0), end(7.0)])["run"]["start"] == 3.0


def test_per_message_table_columns_and_values() -> None:
    events = [*base(), send("m1", 1.0, acked=1.25, recipients=["a", "b"], conv="cx", user="b")]
    events += [note("a", "m1", 1.5), note("a", "m1", 1.75)]
    events += [view("b", "m1", 2.0, conv="cx")]
    frame = events_frame(events)
    wire = per_message_table(frame).sort_values("recipient")
    assert list(wire.columns) == WIRE_COLUMNS
    assert wire[WIRE_COLUMNS[:8]].values.tolist() == [
        ["m1", "a", "b", "cx", 1.0, 1.25, True, 2],
        ["m1", "b", "b", "cx", 1.0, 1.25, True, 0],
    ]
    assert wire["deliveries"].dtype == "int64" and wire["expected"].dtype == bool
    assert wire["first_received_at"].iloc[0] == 1.5
    assert math.isnan(wire["first_received_at"].iloc[1])
    uv = per_message_table(frame, level="user_view").sort_values("recipient")
    assert list(uv.columns) == USER_VIEW_COLUMNS
    assert uv[["client", "expected", "deliveries", "lost"]].values.tolist() == [
        ["a", True, 0, True],
        ["b", True, 1, False],
    ]
    assert uv["first_received_at"].tolist()[1] == 2.0


@pytest.mark.parametrize("level", ["wire", "user_view"])
def test_per_message_table_of_an_empty_run_has_every_column(level: str) -> None:
    columns = WIRE_COLUMNS if level == "wire" else USER_VIEW_COLUMNS
    for frame in (empty_events(), events_frame([*base(), note("a", "ghost", 1.0)])):
        table = per_message_table(frame, level=level)  # type: ignore[arg-type]
        assert list(table.columns) == columns and len(table) == 0


def test_per_message_table_default_grace_is_five_seconds() -> None:
    # d connects 5.5 s before the end: present by end - 5 s, not by end - 6 s.
    events = [*base(), connect("d", END - 5.5), send("m1", 1.0, recipients=["a", "d"])]
    table = per_message_table(events_frame(events)).sort_values("recipient")
    assert table["expected"].tolist() == [True, True]
    table = per_message_table(events_frame(events), grace_s=6.0).sort_values("recipient")
    assert table["expected"].tolist() == [True, False]


def test_a_unit_present_from_exactly_end_minus_grace_is_expected() -> None:
    # b connects at exactly end - grace, the instant m1 is acknowledged.
    events = [connect("a"), connect("b", END - 5.0), end()]
    events += [send("m1", 90.0, acked=END - 5.0, recipients=["a", "b"]), note("a", "m1", 96.0)]
    events += [view("b", "m1", 96.0)]
    r = run(events)
    assert (r["wire"]["expected"], r["wire"]["lost"], r["wire"]["lost_examples"]) == (
        2,
        1,
        [["m1", "b"]],
    )
    assert (r["user_view"]["expected"], r["user_view"]["lost"]) == (2, 1)
    assert run(events, grace_s=5.01)["wire"]["expected"] == 0


def test_a_single_recipient_unit_pairs_every_message() -> None:
    # One user with one client: pairs are keyed message * 1 + unit.
    events = [
        connect("a"),
        end(),
        send("m1", 1.0, recipients=["a"]),
        send("m2", 2.0, recipients=["a"]),
    ]
    events += [
        note("a", "m1", 1.5),
        note("a", "m2", 2.5),
        view("a", "m1", 1.6),
        view("a", "m2", 2.6),
    ]
    r = run(events)
    for level in ("wire", "user_view"):
        assert (r[level]["expected"], r[level]["delivered"], r[level]["lost"]) == (2, 2, 0)
        assert (r[level]["misdirected"], r[level]["unexpected"]) == (0, 0)


def test_a_unit_leaving_at_the_instant_of_the_ack_is_expected() -> None:
    events = [connect("a"), connect("b"), disconnect("b", 1.25), end()]
    events += [send("m1", 1.0, acked=1.25, recipients=["a", "b"]), note("a", "m1", 1.5)]
    events += [view("a", "m1", 1.5)]
    r = run(events)
    for level in ("wire", "user_view"):
        assert (r[level]["expected"], r[level]["lost"], r[level]["not_expected"]) == (2, 1, 0)
    events[2]["t"] = 1.2
    assert run(events)["wire"]["expected"] == 1


def unnamed(event: Event, key: str | None = None) -> Event:
    """A delivery without a messageId, carrying the idempotency key ``key`` if given."""
    event = {**event, "messageId": None}
    return event if key is None else {**event, "idempotencyKey": key}


def test_deliveries_without_a_message_id_are_matched_by_their_own_key_only() -> None:
    # Two sends timed out; neither got a messageId. k0 is the first key of the log.
    events = [*base(), send(None, 1.0, outcome="unknown", key="k0")]
    events += [send(None, 2.0, outcome="unknown", key="k1")]
    events += [unnamed(note("a", "x", 1.5), "k0"), unnamed(note("b", "x", 1.5))]
    # srv-0 carries k0 once (to c), which bridges its other delivery (to b).
    events += [note("c", "srv-0", 1.6, idempotencyKey="k0"), note("b", "srv-0", 1.7)]
    events += [note("c", "ghost", 1.8)]
    wire = run(events)["wire"]
    # (no id, a) by key, (srv-0, c) and (srv-0, b) by the bridge; (no id, b) and (ghost, c)
    # name no send.
    assert (wire["recovered"], wire["recovered_messages"], wire["unexpected"]) == (3, 2, 2)
    assert wire["valid"] is False


def reordering_after(sent_at: float, conv: str, by: str) -> dict[str, Any]:
    """b receives srv-x, a message of an unknown send started at ``sent_at`` in ``conv``, then
    m1, acknowledged at 1.1. The send names srv-x by its messageId, or (a timeout) only by the
    key kx that srv-x's deliveries carry."""
    mid, carried = ("srv-x", {}) if by == "message_id" else (None, {"idempotencyKey": "kx"})
    # Another timed-out send comes first in the log: kx is not the first key.
    events = [*base(), send(None, 0.5, conv="c3", outcome="unknown", key="k-other")]
    events += [send("m1", 1.0, acked=1.1)]
    events += [send(mid, sent_at, conv=conv, outcome="unknown", key="kx")]
    events += [note("b", "srv-x", 6.0, conv, **carried), note("b", "m1", 7.0)]
    events += [view("b", "srv-x", 6.0, conv, **carried), view("b", "m1", 7.0)]
    return run(events)


@pytest.mark.parametrize("by", ["key", "message_id"])
def test_a_recovered_message_dates_and_places_the_deliveries_it_overtakes(by: str) -> None:
    # Sent at 5.0, after m1's ack, in m1's conversation: m1 is reordered; in another, not.
    for conv, reordered in (("c1", 1), ("c2", 0)):
        r = reordering_after(5.0, conv, by)
        for level in ("wire", "user_view"):
            assert (r[level]["recovered"], r[level]["reordered"]) == (1, reordered), (conv, level)
    # Sent at 1.05, before m1's ack: m1 is not overtaken.
    assert reordering_after(1.05, "c1", by)["wire"]["reordered"] == 0


def test_the_earliest_unknown_send_dates_a_message_whose_deliveries_carry_a_later_key() -> None:
    # srv-x's first try (1.05, before m1's ack) and its retry (5.0, key kx) both timed out; its
    # deliveries carry the retry's key. Its t is the first try's: m1 is not overtaken.
    events = [*base(), send("m1", 1.0, acked=1.1)]
    events += [send("srv-x", 1.05, outcome="unknown", key="k-first")]
    events += [send("srv-x", 5.0, outcome="unknown", key="kx")]
    events += [note("b", "srv-x", 6.0, idempotencyKey="kx"), note("b", "m1", 7.0)]
    wire = run(events)["wire"]
    assert (wire["recovered"], wire["reordered"]) == (1, 0)


def test_an_ok_send_without_ack_time_is_acknowledged_at_its_start() -> None:
    events = [*base(), {**send("m1", 1.0), "ackedAt": None}, send("m2", 1.05, acked=1.2)]
    events += [note("b", "m2", 1.5), note("b", "m1", 1.6)]
    r = run(events)
    assert (r["wire"]["expected"], r["wire"]["lost"], r["wire"]["reordered"]) == (6, 4, 1)
    table = per_message_table(events_frame(events))
    assert table.loc[table["messageId"] == "m1", "acked_at"].tolist() == [1.0, 1.0, 1.0]


def test_the_earlier_line_of_two_ok_sends_at_one_instant_decides_among_many_sends() -> None:
    # 24 ok sends at 2.0 and 1.0 alternately, enough for an unstable sort to swap equal times;
    # lines 5 and 7 report one message "dup" at 1.0, in two conversations.
    sends = [send(f"m{k}", 2.0 if k % 2 == 0 else 1.0, recipients=["a"]) for k in range(24)]
    sends[5] = send("dup", 1.0, acked=1.1, recipients=["a"], conv="c1")
    sends[7] = send("dup", 1.0, acked=1.2, recipients=["a"], conv="c2")
    table = per_message_table(events_frame([*sends, connect("a"), end()]))
    dup = table[table["messageId"] == "dup"]
    assert dup[["conversationId", "acked_at"]].values.tolist() == [["c1", 1.1]]
    assert len(table) == 23


def test_float_columns_of_another_type_are_read_as_numbers() -> None:
    # A hand-built table whose columns are all objects, one value not a number at all.
    events = [*base(), send("m1", 1.0), send("m2", 2.0, recipients=["a", "b"])]
    events += [note("a", "m1", 1.5), note("b", "m1", 1.5), view("a", "m2", 2.5)]
    frame = pd.DataFrame(events).astype(object)
    frame.loc[frame["type"] == "send", "attempts"] = "three"
    assert frame["t"].dtype == object
    assert check(frame) == run(events)


def test_a_send_with_an_outcome_of_no_known_kind_reports_no_message() -> None:
    events = [*base(), send("m1", 1.0), {**send("m2", 2.0), "outcome": None}]
    events += [note("a", "m1", 1.5), note("a", "m2", 2.5)]
    r = run(events)
    assert r["sends"] == {"attempted": 2, "ok": 1, "failed": 0, "unknown": 0}
    assert (r["wire"]["sent"], r["wire"]["delivered"], r["wire"]["unexpected"]) == (1, 1, 1)


def test_each_unit_keeps_its_own_order_in_one_conversation() -> None:
    # c receives m2 before b receives m1 (and a shows m2 before b shows m1): across units this
    # is no reordering; c receiving m2 before m1 is.
    events = [*base(), send("m1", 1.0, acked=1.1), send("m2", 2.0, acked=2.1)]
    events += [note("b", "m1", 4.0), note("c", "m2", 3.0)]
    events += [note("c", "m1", 4.0)]
    events += [view("a", "m2", 3.0), view("b", "m1", 4.0)]
    # n3 named no conversation: c receiving it before a receives m1 reorders nothing either.
    events += [send("n3", 5.0, conv=None, acked=5.1), note("c", "n3", 6.0), note("a", "m1", 7.0)]
    r = run(events)
    assert (r["wire"]["reordered"], r["user_view"]["reordered"]) == (1, 0)  # c: m2 before m1


def nameless(event: Event) -> Event:
    """The event without its user: a record that names no one (a corrupt or partial log)."""
    return {**event, "user": None}


def with_nameless_records() -> tuple[list[Event], list[Event]]:
    """A run where a shows m1 in its tab p1 and b in its one client, and the same run with
    connects and views that name no user, with and without a client name (p1 is a's)."""
    events = [*base(), send("m1", 1.0), note("a", "m1", 1.5), note("b", "m1", 1.5)]
    events += [view("a", "m1", 1.6, client="p1"), view("b", "m1", 1.6)]
    strays = [nameless(connect("x", 0.5, "s-p1", client="p1")), nameless(connect("x", 0.5))]
    strays += [nameless(view("x", "m1", 1.7, client="p1")), nameless(view("x", "m1", 1.7))]
    return events, events + strays


def test_connects_and_views_that_name_no_user_change_no_count() -> None:
    events, with_strays = with_nameless_records()
    r = run(with_strays)
    # Clients a and p1 (a's), b, c; the user-less p1 is not a's p1, nor a client of its own.
    uv = r["user_view"]
    assert (uv["clients"], uv["expected"], uv["delivered"], uv["lost"]) == (4, 4, 2, 2)
    assert (uv["events"], uv["duplicated"], uv["unexpected"], uv["misdirected"]) == (2, 0, 0, 0)
    assert uv["lost_examples"] == [["m1", "a", "a"], ["m1", "c", "c"]]
    assert r["streams"] == {"connects": 5, "disconnects": 0, "users": 3}
    clean = run(events)
    assert (r["wire"], r["user_view"]) == (clean["wire"], clean["user_view"])


def test_records_that_name_no_user_or_message_are_coded_as_naming_none() -> None:
    _, with_strays = with_nameless_records()
    with_strays += [send(None, 2.0, outcome="unknown", key="k2"), unnamed(note("c", "x", 2.5))]
    log = split_log(events_frame(with_strays))
    users = code_users(log)
    clients = code_clients(log, users)
    assert clients.ids.tolist() == ["a", "p1", "b", "c"]
    assert clients.user.tolist() == [0, 0, 1, 2] and clients.n_recorded == 4
    # Connects of a, b, c, then the two user-less ones; views of a's p1, b, the two user-less.
    assert clients.connect.tolist() == [0, 2, 3, -1, -1]
    assert clients.view.tolist() == [1, 2, -1, -1]
    messages = code_messages(log)
    # m1, then 1 (Messages.n) for the send and the delivery without a messageId.
    assert messages.ids.tolist() == ["m1"]
    assert messages.send.tolist() == [0, 1]
    assert messages.delivery["wire"].tolist() == [0, 0, 1]
    assert messages.delivery["user_view"].tolist() == [0, 0, 0, 0]
    assert messages.send_conversation.tolist() == [0, 0]
    for codes in (clients.connect, clients.view, messages.send, messages.send_conversation):
        assert codes.dtype == np.int64


def test_one_tab_name_in_two_users_is_two_clients_each_of_its_own_user() -> None:
    # c's p1 is the first client name of the log and c the last user: its code is c's whatever
    # their order (a decoding by the wrong base gives p1 to b).
    events = [connect("c", 0.0, "s-c-p1", client="p1"), connect("a"), connect("b"), end()]
    events += [send("m1", 1.0), view("a", "m1", 1.6, client="p1"), view("c", "m1", 1.6, "c1", "p1")]
    uv = run(events)["user_view"]
    assert (uv["clients"], uv["expected"], uv["delivered"], uv["not_expected"]) == (4, 4, 2, 0)
    assert uv["lost_examples"] == [["m1", "a", "a"], ["m1", "b", "b"]]
    table = per_message_table(events_frame(events), level="user_view")
    assert sorted(table[["recipient", "client", "deliveries"]].values.tolist()) == [
        ["a", "a", 0],
        ["a", "p1", 1],
        ["b", "b", 0],
        ["c", "p1", 1],
    ]


def test_a_send_that_names_no_conversation_has_none_in_the_table() -> None:
    """-1 codes a missing conversation: the row says None, not the last conversation's id."""
    events = [*base(), send("m1", 1.0, conv=None), send("m2", 2.0, conv="c9")]
    table = per_message_table(events_frame(events)).drop_duplicates("messageId")
    conversations = table.set_index("messageId")["conversationId"]
    assert pd.isna(conversations["m1"]) and conversations["m2"] == "c9"
    only = per_message_table(events_frame([*base(), send("m1", 1.0, conv=None)]))
    assert len(only) and only["conversationId"].isna().all()
