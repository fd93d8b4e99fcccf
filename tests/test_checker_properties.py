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
