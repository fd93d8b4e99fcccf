"""Property: inject a known set of anomalies into a clean history; the checker finds exactly those.

The clean history has globally sequential sends (each acknowledged before the next starts), every
present participant receiving each message 0.5 s after it was sent, and absent users who never
connect. On top of it, per level, some deliveries are dropped (lost), some repeated (duplicated),
some adjacent pairs of a recipient's deliveries in one conversation swapped (each swap reorders
exactly one delivery), plus deliveries of never-sent messages (unexpected) and of sends whose
outcome was unknown (recovered).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from semichat.checker import check
from semichat.events import events_frame

Event = dict[str, Any]
LEVELS = {"wire": "notification", "user_view": "view"}
ACTIONS = ["keep", "keep", "keep", "drop", "dup1", "dup2"]


@dataclass
class Expected:
    expected: int = 0
    lost: int = 0
    duplicated: int = 0
    duplicate_copies: int = 0
    reordered: int = 0
    unexpected: int = 0
    recovered: int = 0
    not_expected: int = 0
    lost_pairs: list[list[str]] = field(default_factory=list)


def delivery(kind: str, user: str, mid: str, t: float, conv: str) -> Event:
    common = {"t": t, "user": user, "messageId": mid, "conversationId": conv}
    if kind == "notification":
        return {"type": kind, "stream": f"s-{user}", "eventId": f"{mid}/{t}", **common}
    return {"type": kind, "client": f"p-{user}", **common}


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Event], dict[str, Expected]]:
    users = [f"u{i}" for i in range(draw(st.integers(2, 5)))]
    absent = draw(st.sets(st.sampled_from(users), max_size=len(users) - 1))
    present = [u for u in users if u not in absent]
    convs = [
        sorted(draw(st.sets(st.sampled_from(users), min_size=1)))
        for _ in range(draw(st.integers(1, 3)))
    ]
    n_messages = draw(st.integers(0, 25))
    run_end = n_messages + 10.0
    events: list[Event] = [
        {"type": "connect", "t": 0.0, "user": u, "stream": f"s-{u}"} for u in present
    ]
    events.append({"type": "run", "t": run_end, "phase": "end"})

    messages = []  # (messageId, conversation, recipients, sent at)
    for i in range(n_messages):
        c = draw(st.integers(0, len(convs) - 1))
        sender = draw(st.sampled_from(convs[c]))
        t = 1.0 + i  # acknowledged at t + 0.2, before the next send starts
        mid = f"m{i}"
        messages.append((mid, f"c{c}", convs[c], t))
        events.append(
            {
                "type": "send",
                "t": t,
                "user": sender,
                "conversationId": f"c{c}",
                "idempotencyKey": f"k{i}",
                "recipients": convs[c],
                "outcome": "ok",
                "status": 201,
                "messageId": mid,
                "ackedAt": t + 0.2,
                "attempts": 1,
            }
        )
    unknown_sends = draw(st.integers(0, 3))
    for j in range(unknown_sends):
        events.append(
            {
                "type": "send",
                "t": 0.5,
                "user": users[0],
                "conversationId": "c-unknown",
                "idempotencyKey": f"ku{j}",
                "recipients": users,
                "outcome": "unknown",
                "status": None,
                "messageId": f"mu{j}",
                "ackedAt": None,
                "attempts": 3,
            }
        )

    expected: dict[str, Expected] = {}
    for level, kind in LEVELS.items():
        exp = expected[level] = Expected()
        # Pairs per (recipient, conversation), in send order: the unit that reordering swaps.
        groups: dict[tuple[str, str], list[tuple[str, float]]] = {}
        for mid, conv, recipients, t in messages:
            for u in recipients:
                if u in absent:
                    exp.not_expected += 1
                    continue
                exp.expected += 1
                action = draw(st.sampled_from(ACTIONS))
                if action == "drop":
                    exp.lost += 1
                    exp.lost_pairs.append([mid, u])
                    continue
                extra = {"keep": 0, "dup1": 1, "dup2": 2}[action]
                exp.duplicated += extra > 0
                exp.duplicate_copies += extra
                groups.setdefault((u, conv), []).append((mid, t))
                events += [
                    delivery(kind, u, mid, t + 0.5 + 0.1 * k, conv) for k in range(1, extra + 1)
                ]
        for (u, conv), delivered in groups.items():
            receive = [t + 0.5 for _, t in delivered]
            p = 0
            while p + 1 < len(delivered):
                if draw(st.booleans()):
                    # The later message now arrives first, so the earlier one is reordered.
                    receive[p], receive[p + 1] = receive[p + 1], receive[p]
                    exp.reordered += 1
                    p += 2
                else:
                    p += 1
            events += [
                delivery(kind, u, mid, r, conv)
                for (mid, _), r in zip(delivered, receive, strict=True)
            ]
        ghosts = draw(st.sets(st.tuples(st.sampled_from(present), st.integers(0, 3)), max_size=4))
        exp.unexpected = len(ghosts)
        events += [delivery(kind, u, f"ghost{g}", 2.0, "c0") for u, g in ghosts]
        if unknown_sends:
            found = draw(
                st.sets(
                    st.tuples(st.sampled_from(present), st.integers(0, unknown_sends - 1)),
                    max_size=4,
                )
            )
            exp.recovered = len(found)
            events += [delivery(kind, u, f"mu{j}", 3.0, "c-unknown") for u, j in found]
    # Writers interleave: the checker must not depend on the order of the log.
    order = draw(st.permutations(range(len(events))))
    return [events[i] for i in order], expected


@settings(max_examples=200, deadline=None)
@given(histories())
def test_checker_finds_exactly_the_injected_anomalies(
    history: tuple[list[Event], dict[str, Expected]],
) -> None:
    events, expected = history
    result = check(events_frame(events))
    for level, exp in expected.items():
        got = result[level]
        assert {
            "expected": got["expected"],
            "lost": got["lost"],
            "delivered": got["delivered"],
            "duplicated": got["duplicated"],
            "duplicate_copies": got["duplicate_copies"],
            "reordered": got["reordered"],
            "unexpected": got["unexpected"],
            "recovered": got["recovered"],
            "not_expected": got["not_expected"],
            "misdirected": got["misdirected"],
        } == {
            "expected": exp.expected,
            "lost": exp.lost,
            "delivered": exp.expected - exp.lost,
            "duplicated": exp.duplicated,
            "duplicate_copies": exp.duplicate_copies,
            "reordered": exp.reordered,
            "unexpected": exp.unexpected,
            "recovered": exp.recovered,
            "not_expected": exp.not_expected,
            "misdirected": 0,
        }, level
        assert got["latency_ms"]["count"] == exp.expected - exp.lost
        examples = got["lost_examples"]
        assert len(examples) == min(exp.lost, 10)
        assert all(pair in exp.lost_pairs for pair in examples)
        assert len({tuple(pair) for pair in examples}) == len(examples)


# A second property: on arbitrary messy histories (concurrent sends, every outcome, reused and
# unknown message ids, reconnects, ties on a coarse time grid) the vectorised checker agrees with
# a direct, loop-by-loop reading of the definitions in semichat.checker's docstring.

PRIORITY = {"failed": 1, "unknown": 2, "ok": 3}


def reference(events: list[Event], grace_s: float) -> dict[str, dict[str, int]]:
    ends = [e["t"] for e in events if e["type"] == "run" and e.get("phase") == "end"]
    run_end = max(ends) if ends else max(e["t"] for e in events)
    limit = run_end - grace_s
    sends = sorted((e for e in events if e["type"] == "send"), key=lambda e: e["t"])
    ok: dict[str, Event] = {}
    status: dict[str, int] = {}
    first_send: dict[str, Event] = {}
    for s in sends:
        if s["messageId"] is None:
            continue
        mid = s["messageId"]
        status[mid] = max(status.get(mid, 0), PRIORITY[s["outcome"]])
        if s["outcome"] == "ok":
            ok.setdefault(mid, s)
        elif s["outcome"] == "unknown":
            first_send.setdefault(mid, s)
    first_send.update(ok)

    streams: dict[str, list[Any]] = {}
    for e in events:
        if e["type"] == "connect" and e["stream"] not in streams:
            streams[e["stream"]] = [e["user"], e["t"], None]
    for e in events:
        if e["type"] == "disconnect" and e["stream"] in streams:
            st_ = streams[e["stream"]]
            st_[2] = e["t"] if st_[2] is None else max(st_[2], e["t"])
    wire = [(u, s, max(s, run_end if e is None else e)) for u, s, e in streams.values()]
    spans: dict[tuple[str, str], list[float]] = {}
    for e in events:
        if e["type"] == "view":
            spans.setdefault((e["user"], e["client"]), []).append(e["t"])
    view = wire + [(u, min(ts), max(ts)) for (u, _), ts in spans.items()]

    out = {}
    for level, kind, intervals in (("wire", "notification", wire), ("user_view", "view", view)):
        received: dict[tuple[str, str], list[float]] = {}
        for e in events:
            if e["type"] == kind:
                received.setdefault((e["messageId"], e["user"]), []).append(e["t"])
        counts = dict.fromkeys(
            ["expected", "delivered", "lost", "not_expected", "misdirected", "reordered"], 0
        )
        latency = 0
        for mid, s in ok.items():
            for u in dict.fromkeys(s["recipients"]):
                present = s["ackedAt"] <= limit and any(
                    iu == u and a <= limit and b >= s["ackedAt"] for iu, a, b in intervals
                )
                got = (mid, u) in received
                counts["expected" if present else "not_expected"] += 1
                if present:
                    counts["delivered" if got else "lost"] += 1
                    latency += got
        firsts = []
        for (mid, u), ts in received.items():
            if status.get(mid, 0) == 3 and u not in ok[mid]["recipients"]:
                counts["misdirected"] += 1
            if status.get(mid, 0) >= 2:
                s = first_send[mid]
                firsts.append((u, s["conversationId"], min(ts), s["t"], s.get("ackedAt")))
        for u, c, t, _, acked in firsts:
            counts["reordered"] += acked is not None and any(
                u2 == u and c2 == c and t2 < t and sent2 > acked for u2, c2, t2, sent2, _ in firsts
            )
        counts |= {
            "duplicated": sum(len(ts) > 1 for ts in received.values()),
            "duplicate_copies": sum(len(ts) - 1 for ts in received.values()),
            "unexpected": sum(status.get(mid, 0) <= 1 for mid, _ in received),
            "recovered": sum(status.get(mid, 0) == 2 for mid, _ in received),
            "latency_count": latency,
        }
        out[level] = counts
    return out


@st.composite
def messy_histories(draw: st.DrawFn) -> list[Event]:
    users = ["a", "b", "c", "d"][: draw(st.integers(2, 4))]
    mids = [f"m{i}" for i in range(6)]
    time = st.integers(0, 20).map(float)  # a coarse grid, so ties and boundaries happen
    events: list[Event] = []
    for i in range(draw(st.integers(0, 8))):
        t = draw(time)
        outcome = draw(st.sampled_from(["ok", "ok", "ok", "unknown", "failed"]))
        events.append(
            {
                "type": "send",
                "t": t,
                "user": draw(st.sampled_from(users)),
                "conversationId": draw(st.sampled_from(["c1", "c2"])),
                "idempotencyKey": f"k{i}",
                "recipients": draw(st.lists(st.sampled_from(users), min_size=1, max_size=4)),
                "outcome": outcome,
                "status": None,
                "messageId": draw(st.sampled_from(mids)) if outcome != "failed" else f"f{i}",
                "ackedAt": t + draw(st.integers(0, 4)) if outcome == "ok" else None,
                "attempts": 1,
            }
        )
    for i in range(draw(st.integers(0, 6))):
        u, t = draw(st.sampled_from(users)), draw(time)
        events.append({"type": "connect", "t": t, "user": u, "stream": f"s{i}"})
        if draw(st.booleans()):
            t_end = t + draw(st.integers(0, 10))
            events.append({"type": "disconnect", "t": t_end, "user": u, "stream": f"s{i}"})
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["notification", "view"]))
        events.append(
            delivery(
                kind,
                draw(st.sampled_from(users)),
                draw(st.sampled_from([*mids, "f0", "ghost"])),
                draw(time),
                "c1",
            )
        )
    if draw(st.booleans()):
        events.append({"type": "run", "t": draw(time) + 5.0, "phase": "end"})
    return events


@settings(max_examples=300, deadline=None)
@given(messy_histories(), st.sampled_from([0.0, 3.0, 5.0]))
def test_checker_agrees_with_a_direct_reading_of_the_definitions(
    events: list[Event], grace_s: float
) -> None:
    if not events:
        return
    result = check(events_frame(events), grace_s=grace_s)
    for level, want in reference(events, grace_s).items():
        got = {k: result[level][k] for k in want if k != "latency_count"}
        got["latency_count"] = result[level]["latency_ms"]["count"]
        assert got == want, level
