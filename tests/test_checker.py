"""Hand-built histories with known anomalies; every test asserts exact counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from semichat.harness.checker import check, per_message_table
from semichat.harness.events import append_events, empty_events, events_frame, read_events

Event = dict[str, Any]
USERS = ["a", "b", "c"]
END = 100.0


def send(
    mid: str | None,
    t: float,
    *,
    user: str = "a",
    conv: str | None = "c1",
    recipients: list[str] | None = None,
    outcome: str = "ok",
    acked: float | None = None,
    key: str | None = None,
) -> Event:
    return {
        "type": "send",
        "t": t,
        "user": user,
        "conversationId": conv,
        "idempotencyKey": key or f"k-{mid}",
        "recipients": recipients if recipients is not None else USERS,
        "outcome": outcome,
        "status": {"ok": 201, "failed": 400, "unknown": None}[outcome],
        "messageId": mid,
        "ackedAt": (t + 0.1 if acked is None else acked) if outcome == "ok" else None,
        "attempts": 1,
    }


def with_client(event: Event, client: str | None) -> Event:
    # Without a client field an event stands for its user's one client, as in old runs.
    return event if client is None else {**event, "client": client}


def connect(
    user: str, t: float = 0.0, stream: str | None = None, client: str | None = None
) -> Event:
    event = {"type": "connect", "t": t, "user": user, "stream": stream or f"s-{user}"}
    return with_client(event, client)


def disconnect(user: str, t: float, stream: str | None = None, client: str | None = None) -> Event:
    event = {
        "type": "disconnect",
        "t": t,
        "user": user,
        "stream": stream or f"s-{user}",
        "reason": "closed",
    }
    return with_client(event, client)


def note(user: str, mid: str, t: float, conv: str = "c1", **extra: Any) -> Event:
    return {
        "type": "notification",
        "t": t,
        "user": user,
        "stream": f"s-{user}",
        "eventId": f"e-{mid}-{user}-{t}",
        "messageId": mid,
        "conversationId": conv,
        **extra,
    }


def view(
    user: str, mid: str, t: float, conv: str = "c1", client: str | None = None, **extra: Any
) -> Event:
    event = {"type": "view", "t": t, "user": user, "conversationId": conv, "messageId": mid}
    return with_client({**event, **extra}, client)


def end(t: float = END) -> Event:
    return {"type": "run", "t": t, "phase": "end", "params": {}}


def delivered_everywhere(mid: str, t: float, users: list[str] = USERS) -> list[Event]:
    return [e for u in users for e in (note(u, mid, t), view(u, mid, t + 0.05))]


def base() -> list[Event]:
    return [connect(u) for u in USERS] + [end()]


def run(events: list[Event], **kwargs: Any) -> dict[str, Any]:
    return check(events_frame(events), **kwargs)


def test_clean_history_has_no_anomalies() -> None:
    events = [*base(), send("m1", 1.0), send("m2", 2.0)]
    events += delivered_everywhere("m1", 1.5) + delivered_everywhere("m2", 2.5)
    r = run(events)
    for level in ("wire", "user_view"):
        lv = r[level]
        assert (lv["sent"], lv["expected"], lv["delivered"], lv["lost"]) == (2, 6, 6, 0)
        assert lv["duplicated"] == lv["duplicate_copies"] == lv["reordered"] == 0
        assert lv["unexpected"] == lv["recovered"] == lv["not_expected"] == 0
        assert lv["valid"] is True
    assert r["wire"]["latency_ms"] == pytest.approx(
        {"min": 500.0, "p50": 500.0, "p95": 500.0, "p99": 500.0, "max": 500.0, "count": 6}
    )
    assert r["user_view"]["latency_ms"]["min"] == pytest.approx(550.0)
    assert r["wire"]["notifications_per_message"] == 3.0
    assert r["user_view"]["views_per_message"] == 3.0
    assert r["sends"] == {"attempted": 2, "ok": 2, "failed": 0, "unknown": 0}
    assert r["streams"] == {"connects": 3, "disconnects": 0, "users": 3}
    assert r["run"] == {"start": 0.0, "end": END, "grace_s": 5.0, "late_ms": 5000.0}
    assert (r["wire"]["late"], r["user_view"]["late"]) == (0, 0)
    assert r["user_view"]["clients"] == 3  # one per user: no event names a client
    json.dumps(r)  # plain Python types only


def test_lost_notification_is_counted_per_recipient() -> None:
    events = [*base(), send("m1", 1.0), send("m2", 2.0)]
    events += [*delivered_everywhere("m1", 1.5), note("c", "m2", 2.5)]
    r = run(events)
    assert (r["wire"]["expected"], r["wire"]["delivered"], r["wire"]["lost"]) == (6, 4, 2)
    assert r["wire"]["lost_examples"] == [["m2", "a"], ["m2", "b"]]
    assert r["wire"]["valid"] is False
    assert (r["user_view"]["delivered"], r["user_view"]["lost"]) == (3, 3)
    assert r["wire"]["latency_ms"]["count"] == 4


def test_duplicates_count_pairs_and_extra_copies() -> None:
    events = [*base(), send("m1", 1.0), *delivered_everywhere("m1", 1.5)]
    events += [note("b", "m1", 1.6), note("c", "m1", 1.7), note("c", "m1", 1.8)]
    events += [view("a", "m1", 3.0)]
    r = run(events)
    assert (r["wire"]["duplicated"], r["wire"]["duplicate_copies"]) == (2, 3)
    assert (r["user_view"]["duplicated"], r["user_view"]["duplicate_copies"]) == (1, 1)
    assert r["wire"]["delivered"] == 3 and r["wire"]["lost"] == 0
    assert r["wire"]["valid"] is True  # duplicates are reported, not failures
    # Latency is measured on the first copy.
    assert r["wire"]["latency_ms"]["max"] == pytest.approx(500.0)
    assert r["wire"]["notifications_per_message"] == 6.0


def test_unexpected_covers_unknown_ids_failed_sends_and_missing_ids() -> None:
    events = [*base(), send("m1", 1.0), send("mf", 2.0, outcome="failed")]
    events += delivered_everywhere("m1", 1.5)
    events += [note("b", "ghost", 3.0), note("c", "ghost", 3.0), note("b", "mf", 3.0)]
    events += [{**note("a", "x", 4.0), "messageId": None}]
    r = run(events)
    assert r["wire"]["unexpected"] == 4
    assert r["wire"]["valid"] is False
    assert r["user_view"]["unexpected"] == 0
    assert r["sends"] == {"attempted": 2, "ok": 1, "failed": 1, "unknown": 0}
    assert r["wire"]["sent"] == 1


def test_deliveries_of_unknown_sends_are_recovered() -> None:
    events = [*base(), send("m9", 1.0, outcome="unknown")]
    # A timed-out send has no messageId; the delivery carries the idempotency key.
    events += [send(None, 2.0, outcome="unknown", key="k-lost-response")]
    events += [send(None, 2.5, outcome="unknown", key="k-never-created")]
    events += [note("b", "m9", 1.5), note("c", "m9", 1.6), view("b", "m9", 1.7)]
    events += [note("b", "srv-123", 2.6, idempotencyKey="k-lost-response")]
    r = run(events)
    assert (r["wire"]["recovered"], r["wire"]["recovered_messages"]) == (3, 2)
    assert (r["user_view"]["recovered"], r["user_view"]["recovered_messages"]) == (1, 1)
    assert r["wire"]["unexpected"] == 0 and r["wire"]["expected"] == 0
    assert r["wire"]["valid"] is True


def test_recipients_never_present_in_time_are_not_expected() -> None:
    users = [*USERS, "d", "e", "f", "g"]
    events = [connect(u) for u in USERS] + [end()]
    events += [
        # d never connects; e only within the grace period before the end.
        connect("e", END - 2.0),
        # f left before the acknowledgement and never came back.
        connect("f", 0.0),
        disconnect("f", 0.5),
        # g left before the ack and came back later: expected, and lost here.
        connect("g", 0.0, "s-g1"),
        disconnect("g", 0.5, "s-g1"),
        connect("g", 50.0, "s-g2"),
    ]
    events += [send("m1", 1.0, recipients=users), *delivered_everywhere("m1", 1.5)]
    events += [note("f", "m1", 1.05)]  # arrived before the ack, while f was still there
    r = run(events)
    wire = r["wire"]
    assert (wire["expected"], wire["delivered"], wire["lost"]) == (4, 3, 1)
    assert (wire["not_expected"], wire["not_expected_delivered"]) == (3, 1)
    assert wire["lost_examples"] == [["m1", "g"]]
    assert r["streams"] == {"connects": 7, "disconnects": 2, "users": 6}


def test_grace_and_run_end_marker_decide_what_is_expected() -> None:
    events = [connect(u) for u in USERS] + [send("m1", 1.0), send("m2", 96.0)]
    events += [note("b", "x-late", 120.0)]  # an event after the marker does not move the end
    r = run([*events, end()])
    assert r["run"]["end"] == END
    assert (r["wire"]["expected"], r["wire"]["not_expected"]) == (3, 3)
    # Without a marker the last event ends the run, so m2 is ack'd long before end - grace.
    r = run(events)
    assert r["run"]["end"] == 120.0
    assert (r["wire"]["expected"], r["wire"]["not_expected"]) == (6, 0)
    assert run([*events, end()], grace_s=0.0)["wire"]["expected"] == 6


def test_reordered_when_an_earlier_delivery_was_sent_after_the_ack() -> None:
    events = [
        *base(),
        send("m1", 1.0, acked=1.1),
        send("m2", 2.0, acked=2.1),
        # Concurrent sends: m4 started (4.0) before m3 was acknowledged (5.0).
        send("m3", 3.0, acked=5.0, user="b"),
        send("m4", 4.0, acked=4.5),
        # Another conversation's order is independent.
        send("n1", 10.0, conv="c2", acked=10.1),
    ]
    events += [note("b", "m2", 2.2), note("b", "m1", 2.3)]  # b: m1 is reordered
    events += [note("c", "m1", 1.2), note("c", "m2", 2.2)]  # c: in order
    events += [note("a", "m4", 6.0), note("a", "m3", 6.1)]  # a: allowed, m3 was concurrent
    events += [note("b", "n1", 10.5), note("b", "m3", 11.0), note("b", "m4", 11.0)]
    # Equal receive times are not "earlier": m4 at 11.0 vs m3 at 11.0 is fine either way.
    events += [view("c", "m2", 2.5), view("c", "m1", 2.6), view("c", "m3", 7.0)]
    r = run(events)
    assert r["wire"]["reordered"] == 1
    assert r["user_view"]["reordered"] == 1
    table = per_message_table(events_frame(events))
    reordered = table[table["reordered"]]
    assert reordered[["messageId", "recipient"]].values.tolist() == [["m1", "b"]]


def test_reordering_across_many_messages_counts_each_overtaken_delivery() -> None:
    events = base() + [send(f"m{i}", float(i), acked=i + 0.1) for i in range(1, 6)]
    # b receives m5 first, then m1..m4: every one of m1..m4 was overtaken by m5.
    events += [note("b", "m5", 6.0)] + [note("b", f"m{i}", 6.0 + i) for i in range(1, 5)]
    assert run(events)["wire"]["reordered"] == 4


def test_misdirected_delivery_to_a_non_recipient() -> None:
    events = [*base(), send("m1", 1.0, recipients=["a", "b"])]
    events += [note("a", "m1", 1.5), note("b", "m1", 1.5), note("c", "m1", 1.5)]
    r = run(events)
    assert r["wire"]["misdirected"] == 1
    assert (r["wire"]["expected"], r["wire"]["delivered"], r["wire"]["unexpected"]) == (2, 2, 0)


def test_latency_quantiles_interpolate_linearly() -> None:
    events = [*base(), send("m1", 1.0, recipients=["a", "b", "c"])]
    events += [note("a", "m1", 1.1), note("b", "m1", 1.2), note("c", "m1", 1.5)]
    lat = run(events)["wire"]["latency_ms"]
    assert lat == pytest.approx(
        {"min": 100.0, "p50": 200.0, "p95": 470.0, "p99": 494.0, "max": 500.0, "count": 3}
    )


def test_user_view_presence_from_client_events_without_a_stream() -> None:
    events = [end(), send("m1", 1.0, recipients=["a", "b"]), send("m2", 2.0, recipients=["a"])]
    events += [view("a", "m0", 0.5), view("a", "m1", 30.0), view("b", "m1", 1.5)]
    r = run(events)
    # a's page showed events from 0.5 to 30 (present after both acks); b's only at 1.5.
    assert (r["user_view"]["expected"], r["user_view"]["lost"]) == (3, 1)
    assert r["user_view"]["lost_examples"] == [["m2", "a", "a"]]  # [message, user, client]
    assert r["user_view"]["unexpected"] == 1  # m0 was never sent
    assert r["wire"]["expected"] == 0 and r["wire"]["not_expected"] == 3


def test_duplicate_ok_sends_of_one_message_count_once() -> None:
    events = [*base(), send("m1", 1.0), send("m1", 1.2), *delivered_everywhere("m1", 1.5)]
    r = run(events)
    assert (r["wire"]["sent"], r["wire"]["expected"], r["wire"]["delivered"]) == (1, 3, 3)
    assert r["sends"]["ok"] == 2


@pytest.mark.parametrize(
    "events",
    [
        [],
        [end()],
        base(),
        [send("m1", 1.0)],
        [note("a", "m1", 1.0)],
        [view("a", "m1", 1.0)],
        [disconnect("a", 1.0)],
    ],
)
def test_empty_and_partial_histories(events: list[Event]) -> None:
    r = run(events)
    for level in ("wire", "user_view"):
        assert r[level]["lost"] == r[level]["delivered"] == r[level]["reordered"] == 0
    json.dumps(r)


def test_partial_columns_and_an_empty_frame() -> None:
    assert check(pd.DataFrame())["wire"]["sent"] == 0
    assert check(empty_events())["user_view"]["expected"] == 0
    events = base() + [send("m1", 1.0)] + [note(u, "m1", 2.0) for u in USERS]
    r = check(pd.DataFrame(events))  # no view columns at all
    assert (r["wire"]["delivered"], r["user_view"]["lost"]) == (3, 3)


def test_per_message_table_has_one_row_per_pair() -> None:
    events = [*base(), send("m1", 1.0), send("m2", 2.0, recipients=["a", "b"])]
    events += [*delivered_everywhere("m1", 1.5), note("a", "m2", 2.2), note("a", "m2", 2.4)]
    table = per_message_table(events_frame(events)).sort_values(["messageId", "recipient"])
    assert table[["messageId", "recipient", "deliveries", "lost"]].values.tolist() == [
        ["m1", "a", 1, False],
        ["m1", "b", 1, False],
        ["m1", "c", 1, False],
        ["m2", "a", 2, False],
        ["m2", "b", 0, True],
    ]
    assert table["latency_ms"].round(6).tolist()[:4] == [500.0, 500.0, 500.0, 200.0]
    assert set(table["conversationId"]) == {"c1"}
    assert set(table["sender"]) == {"a"}


def test_read_events_merges_files_and_skips_a_torn_line(tmp_path: Path) -> None:
    events_dir = tmp_path / "events"
    first = [*base(), send("m1", 1.0)]
    assert append_events(events_dir / "worker-1.jsonl", first) == len(first)
    append_events(events_dir / "worker-2.jsonl", delivered_everywhere("m1", 1.5))
    with (events_dir / "worker-2.jsonl").open("a") as f:
        f.write('{"type": "notification", "t": 9')  # the writer was killed mid-line
    (events_dir / "notes.txt").write_text("not an event file")
    frame = read_events(tmp_path)  # the run directory
    assert len(frame) == len(first) + 6
    assert frame["t"].is_monotonic_increasing
    assert frame.loc[frame["type"] == "send", "recipients"].iloc[0] == USERS
    assert len(read_events(events_dir)) == len(frame)
    assert len(read_events([events_dir / "worker-1.jsonl"])) == len(first)
    assert run(first + delivered_everywhere("m1", 1.5)) == check(frame)


def test_a_send_starting_exactly_at_the_ack_does_not_reorder() -> None:
    events = [*base(), send("m1", 1.0, acked=2.0), send("m2", 2.0, acked=2.1)]
    events += [note("b", "m2", 2.2), note("b", "m1", 2.3)]
    assert run(events)["wire"]["reordered"] == 0
    events[-3]["t"] = 2.0001  # now m2 started strictly after m1's acknowledgement
    assert run(events)["wire"]["reordered"] == 1


def test_an_ok_send_wins_over_an_unknown_send_with_the_same_key() -> None:
    # The first attempt timed out; the user's retry with the same key succeeded as m1.
    events = [*base(), send(None, 0.5, outcome="unknown", key="k1"), send("m1", 1.0, key="k1")]
    events += [note(u, "m1", 1.5, idempotencyKey="k1") for u in USERS]
    r = run(events)
    assert (r["wire"]["delivered"], r["wire"]["recovered"], r["wire"]["unexpected"]) == (3, 0, 0)


def test_the_earliest_of_several_unknown_sends_of_a_message_dates_it_in_any_log_order() -> None:
    # m1's first attempt at t=0 and its retry at t=1 both timed out; m0 was acknowledged at 0.
    # m1 was sent at 0, not after m0's ack, so receiving m1 before m0 reorders nothing.
    sends = [
        send("m1", 0.0, recipients=["a"], outcome="unknown", key="k1"),
        send("m1", 1.0, recipients=["a"], outcome="unknown", key="k2"),
    ]
    rest = [send("m0", 0.0, recipients=["a"], acked=0.0), note("a", "m1", 0.0)]
    rest += [note("a", "m0", 1.0)]
    for log in (sends + rest, sends[::-1] + rest):
        assert check(events_frame(log), grace_s=0.0)["wire"]["reordered"] == 0


def test_deliveries_received_at_the_same_instant_are_not_reordered() -> None:
    # m2 is logged first, so nothing but the tie rule keeps it from counting as "earlier".
    events = [*base(), send("m2", 2.0, acked=2.1), send("m1", 1.0, acked=1.1)]
    events += [note("b", "m2", 3.0), note("b", "m1", 3.0), note("c", "m1", 3.0)]
    assert run(events)["wire"]["reordered"] == 0


def test_malformed_records_are_ignored_not_miscounted() -> None:
    events = [*base(), send("m1", 1.0, recipients=["a", "b"]), send("m2", 2.0, conv=None)]
    events += [note("a", "m1", 1.5), note("b", "m1", 1.5), {**note("b", "m1", 1.6), "user": None}]
    events += [disconnect("z", 3.0, stream="never-opened")]
    # m2's send named no conversation; its late delivery must not be grouped with m1's.
    events += [note("a", "m2", 0.5), note("b", "m2", 2.5)]
    r = run(events)
    wire = r["wire"]
    assert (wire["delivered"], wire["lost"], wire["duplicated"], wire["unexpected"]) == (4, 1, 0, 0)
    assert (wire["reordered"], wire["events"]) == (0, 4)
    assert r["streams"]["disconnects"] == 1


# Several clients (tabs) per user: the user view judges each client, the wire each user.


def tabs_of(user: str, n: int = 3) -> list[str]:
    return [f"{user}/tab{i}" for i in range(n)]


def multitab_base(users: list[str] = USERS, n: int = 3) -> list[Event]:
    """Every user with n tabs, each tab its own stream, connected throughout."""
    return [connect(u, 0.0, f"s-{c}", client=c) for u in users for c in tabs_of(u, n)] + [end()]


def test_each_tab_showing_a_message_once_is_not_a_duplicate() -> None:
    events = [*multitab_base(), send("m1", 1.0), send("m2", 2.0)]
    # One queue per user: one tab takes each notification, yet every tab shows both messages.
    events += [note(u, m, t + 0.5) for u in USERS for m, t in (("m1", 1.0), ("m2", 2.0))]
    events += [view(u, m, 3.0, client=c) for u in USERS for c in tabs_of(u) for m in ("m1", "m2")]
    r = run(events)
    uv = r["user_view"]
    assert (uv["expected"], uv["delivered"], uv["lost"], uv["duplicated"]) == (18, 18, 0, 0)
    assert (uv["clients"], uv["events"], uv["views_per_message"]) == (9, 18, 9.0)
    assert uv["valid"] is True
    wire = r["wire"]
    assert (wire["expected"], wire["delivered"], wire["lost"], wire["duplicated"]) == (6, 6, 0, 0)
    assert "clients" not in wire
    assert r["streams"] == {"connects": 9, "disconnects": 0, "users": 3}


def test_a_tab_that_never_shows_a_message_is_lost_and_one_showing_it_twice_duplicated() -> None:
    events = [*multitab_base(), send("m1", 1.0), *(note(u, "m1", 1.5) for u in USERS)]
    shown = [(u, c) for u in USERS for c in tabs_of(u) if c != "b/tab1"]
    events += [view(u, "m1", 2.0, client=c) for u, c in shown]
    events += [view("c", "m1", 2.5, client="c/tab2")]  # a client bug: shown twice in one tab
    r = run(events)
    uv = r["user_view"]
    assert (uv["expected"], uv["delivered"], uv["lost"]) == (9, 8, 1)
    assert (uv["duplicated"], uv["duplicate_copies"]) == (1, 1)
    assert uv["lost_examples"] == [["m1", "b", "b/tab1"]]
    assert r["wire"]["lost"] == 0
    table = per_message_table(events_frame(events), level="user_view")
    assert len(table) == 9 and table["client"].nunique() == 9
    lost = table[table["lost"]]
    assert lost[["messageId", "recipient", "client"]].values.tolist() == [["m1", "b", "b/tab1"]]
    assert "client" not in per_message_table(events_frame(events)).columns


def test_a_tab_is_expected_only_if_it_was_present_after_the_ack() -> None:
    events = [
        connect("a", 0.0, "s-a0", client="a/tab0"),
        # a/tab1 closed before the ack and never came back: not expected.
        connect("a", 0.0, "s-a1", client="a/tab1"),
        disconnect("a", 1.05, "s-a1", client="a/tab1"),
        # a/tab2 has no stream, but showed something after the ack: present, and lost here.
        view("a", "m0", 0.5, client="a/tab2"),
        view("a", "m0", 40.0, client="a/tab2"),
        # a/tab3 opened only within the grace period: not expected.
        connect("a", END - 1.0, "s-a3", client="a/tab3"),
        send("m1", 1.0, recipients=["a"]),
        send("m0", 0.0, recipients=["a"], acked=0.1),
        view("a", "m1", 1.5, client="a/tab0"),
        view("a", "m0", 0.2, client="a/tab0"),
        end(),
    ]
    uv = run(events)["user_view"]
    # tab0: m0 and m1 shown; tab1: m0 expected, lost; tab2: m0 shown (twice), m1 lost.
    assert (uv["expected"], uv["delivered"], uv["lost"]) == (5, 3, 2)
    assert (uv["not_expected"], uv["clients"]) == (3, 4)
    assert uv["duplicated"] == 1  # a/tab2 showed m0 twice
    assert uv["lost_examples"] == [["m0", "a", "a/tab1"], ["m1", "a", "a/tab2"]]


def test_recipients_without_any_client_count_once_as_not_expected() -> None:
    events = [*multitab_base(["a"]), send("m1", 1.0, recipients=["a", "b"])]
    events += [view("a", "m1", 2.0, client=c) for c in tabs_of("a")]
    uv = run(events)["user_view"]
    assert (uv["expected"], uv["delivered"], uv["not_expected"], uv["clients"]) == (3, 3, 1, 3)


def test_a_misdirected_view_and_order_per_tab() -> None:
    events = [*multitab_base(["a", "b"], n=2)]
    events += [send("m1", 1.0, recipients=["a", "b"]), send("m2", 2.0, recipients=["a", "b"])]
    events += [view("c", "m1", 3.0, client="c/tab0")]  # c is no recipient
    # a/tab0 shows m2 before m1: reordered; a/tab1 shows them in order.
    events += [view("a", "m2", 3.0, client="a/tab0"), view("a", "m1", 3.1, client="a/tab0")]
    events += [view("a", "m1", 3.0, client="a/tab1"), view("a", "m2", 3.1, client="a/tab1")]
    uv = run(events)["user_view"]
    assert (uv["misdirected"], uv["reordered"], uv["delivered"], uv["lost"]) == (1, 1, 4, 4)


def test_the_small_committed_run_still_checks() -> None:
    small = Path(__file__).resolve().parent / "data" / "runs" / "chat-small"
    r = check(read_events(small))
    uv, wire = r["user_view"], r["wire"]
    # One tab per user: the user view has as many clients as users, and as many pairs.
    assert uv["clients"] == r["streams"]["users"] > 0
    assert uv["expected"] == wire["expected"] > 0
    assert uv["lost"] == uv["duplicated"] == uv["unexpected"] == 0
    assert wire["late"] == uv["late"] == 0


# Sends whose outcome is unknown: a messageId reaches the checker through a view's parsed key.


def test_views_bridge_a_message_to_an_unknown_send_for_every_delivery() -> None:
    events = [*base(), send(None, 1.0, outcome="unknown", key="k-timeout")]
    events += [send(None, 1.5, outcome="unknown", key="k-never-stored")]
    events += [send("m2", 2.0)]
    # The server did store k-timeout's message as srv-1: notifications carry no key, but the
    # views parsed it from the message's text, for b only.
    events += [note(u, "srv-1", 1.2) for u in USERS]
    events += [view("b", "srv-1", 1.3, idempotencyKey="k-timeout"), view("c", "srv-1", 1.3)]
    events += delivered_everywhere("m2", 2.5)
    # A view of an ok message carrying its own key changes nothing.
    events += [view("a", "m2", 2.6, idempotencyKey="k-m2")]
    r = run(events)
    wire, uv = r["wire"], r["user_view"]
    assert (wire["recovered"], wire["recovered_messages"], wire["unexpected"]) == (3, 1, 0)
    assert (uv["recovered"], uv["recovered_messages"], uv["unexpected"]) == (2, 1, 0)
    assert (wire["delivered"], uv["delivered"], uv["duplicated"]) == (3, 3, 1)
    assert wire["valid"] is True and uv["valid"] is True
    # Without the key the same deliveries are unexpected: the bridge is what matches them.
    bare = [{k: v for k, v in e.items() if k != "idempotencyKey"} for e in events]
    bare = [e for e in bare if e["type"] != "send" or e["messageId"]]
    assert (run(bare)["wire"]["unexpected"], run(bare)["user_view"]["unexpected"]) == (3, 2)


def test_a_bridged_message_that_was_sent_ok_is_not_recovered() -> None:
    # The key of an unknown first try names a message that a later ok send also reported.
    events = [*base(), send(None, 0.5, outcome="unknown", key="k1"), send("m1", 1.0, key="k1")]
    events += [note(u, "m1", 1.5) for u in USERS]
    events += [view(u, "m1", 1.6, idempotencyKey="k1") for u in USERS]
    r = run(events)
    for level in ("wire", "user_view"):
        assert (r[level]["delivered"], r[level]["recovered"], r[level]["unexpected"]) == (3, 0, 0)


# Late: delivered, but long after the send (a long poll cancelled on disconnect swallows a
# notification until the SQS visibility timeout of 30 s brings it back).


def test_late_counts_expected_pairs_delivered_after_late_ms() -> None:
    events = [*base(), send("m1", 1.0), send("m2", 2.0)]
    events += [note("a", "m1", 1.5), note("b", "m1", 31.2), note("c", "m1", 6.0)]
    events += [note("a", "m2", 7.0001), note("b", "m2", 2.5), note("b", "m2", 40.0)]
    events += [note("d", "m1", 50.0)]  # misdirected, not late
    r = run(events)
    wire = r["wire"]
    # c's m1 took exactly 5 s: not late; b's m1 took 30.2 s and a's m2 5.0001 s.
    assert (wire["delivered"], wire["lost"], wire["late"]) == (5, 1, 2)
    assert wire["latency_ms"]["max"] == pytest.approx(30200.0)
    assert run(events, late_ms=1000.0)["wire"]["late"] == 3
    assert run(events, late_ms=60000.0)["wire"]["late"] == 0
    assert run(events, late_ms=1000.0)["run"]["late_ms"] == 1000.0
    table = per_message_table(events_frame(events), late_ms=1000.0)
    late = table[table["late"]].sort_values(["messageId", "recipient"])
    assert late[["messageId", "recipient"]].values.tolist() == [
        ["m1", "b"],
        ["m1", "c"],
        ["m2", "a"],
    ]


def test_late_pairs_not_expected_are_not_counted() -> None:
    events = [connect("a"), connect("b", 0.0), disconnect("b", 0.5), end()]
    events += [send("m1", 1.0, recipients=["a", "b"]), note("a", "m1", 20.0), note("b", "m1", 20.0)]
    wire = run(events)["wire"]
    assert (wire["expected"], wire["late"], wire["not_expected_delivered"]) == (1, 1, 1)
