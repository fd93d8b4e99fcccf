"""Property: inject a known set of anomalies into a clean history; the checker finds exactly those.

The clean history has globally sequential sends (each acknowledged before the next starts), every
present participant receiving each message 0.5 s after it was sent, and absent users who never
connect. Every present user holds N tabs (clients), each with its own stream: on the wire the
user receives each notification once (one queue per user), in the user view each tab shows each
message once. On top of it, per level and recipient unit (user on the wire, tab in the view), some
deliveries are dropped (lost), some repeated (duplicated), some adjacent pairs of a unit's
deliveries in one conversation swapped (each swap reorders exactly one delivery), plus deliveries
of never-sent messages (unexpected) and of sends whose outcome was unknown (recovered).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from semichat.harness.checker import check
from semichat.harness.events import events_frame

from .hypothesis_profiles import examples

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
    late: int = 0
    lost_pairs: list[list[str]] = field(default_factory=list)


def delivery(
    kind: str, user: str, mid: str, t: float, conv: str, client: str | None = None
) -> Event:
    common = {"t": t, "user": user, "messageId": mid, "conversationId": conv}
    if kind == "notification":
        return {"type": kind, "stream": f"s-{user}", "eventId": f"{mid}/{t}", **common}
    return {"type": kind, "client": client or f"{user}/tab0", **common}


@st.composite
def histories(
    draw: st.DrawFn, actions: list[str] = ACTIONS
) -> tuple[list[Event], dict[str, Expected]]:
    users = [f"u{i}" for i in range(draw(st.integers(2, 5)))]
    absent = draw(st.sets(st.sampled_from(users), max_size=len(users) - 1))
    present = [u for u in users if u not in absent]
    tabs = draw(st.integers(1, 3))
    clients = {u: [f"{u}/tab{i}" for i in range(tabs)] for u in users}
    convs = [
        sorted(draw(st.sets(st.sampled_from(users), min_size=1)))
        for _ in range(draw(st.integers(1, 3)))
    ]
    n_messages = draw(st.integers(0, 25))
    run_end = n_messages + 10.0
    events: list[Event] = [
        {"type": "connect", "t": 0.0, "user": u, "stream": f"s-{c}", "client": c}
        for u in present
        for c in clients[u]
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
        # The recipient units: users on the wire, each user's tabs in the view.
        units = {u: [None] if level == "wire" else clients[u] for u in users}
        # Pairs per (unit, conversation), in send order: the unit that reordering swaps.
        groups: dict[tuple[str, str | None, str], list[tuple[str, float, int]]] = {}
        for mid, conv, recipients, t in messages:
            for u in recipients:
                if u in absent:
                    # An absent user recorded no client: one stand-in, never present.
                    exp.not_expected += 1
                    continue
                for c in units[u]:
                    exp.expected += 1
                    action = draw(st.sampled_from(actions))
                    if action == "drop":
                        exp.lost += 1
                        exp.lost_pairs.append([mid, u] if c is None else [mid, u, c])
                        continue
                    extra = {"keep": 0, "dup1": 1, "dup2": 2}[action]
                    exp.duplicated += extra > 0
                    exp.duplicate_copies += extra
                    groups.setdefault((u, c, conv), []).append((mid, t, extra))
                    events += [
                        delivery(kind, u, mid, t + 0.5 + 0.1 * k, conv, c)
                        for k in range(1, extra + 1)
                    ]
        for (u, c, conv), delivered in groups.items():
            receive = [t + 0.5 for _, t, _ in delivered]
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
                delivery(kind, u, mid, r, conv, c)
                for (mid, _, _), r in zip(delivered, receive, strict=True)
            ]
            # A swap across a long gap in a unit's messages delays one of them: late, unless a
            # duplicate copy (at t + 0.6) came first.
            for (_, t, extra), r in zip(delivered, receive, strict=True):
                first = min(r, t + 0.6) if extra else r
                exp.late += first - t > 5.0
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


@settings(max_examples=examples(200), deadline=None)
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
            "late": got["late"],
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
            "late": exp.late,
        }, level
        assert got["latency_ms"]["count"] == exp.expected - exp.lost
        examples = got["lost_examples"]
        assert len(examples) == min(exp.lost, 10)
        assert all(pair in exp.lost_pairs for pair in examples)
        assert len({tuple(pair) for pair in examples}) == len(examples)
    # Absent users recorded nothing: their stand-in clients are not counted.
    assert result["user_view"]["clients"] == len(
        {e["client"] for e in events if e["type"] == "connect"}
    )


@settings(max_examples=examples(100), deadline=None)
@given(histories(actions=["keep"]))
def test_tabs_each_showing_every_message_once_are_never_duplicates(
    history: tuple[list[Event], dict[str, Expected]],
) -> None:
    events, _ = history
    result = check(events_frame(events))
    for level in LEVELS:
        got = result[level]
        assert (got["duplicated"], got["lost"]) == (0, 0), level
        assert got["delivered"] == got["expected"], level


# A second property: on arbitrary messy histories (concurrent sends, every outcome, reused and
# unknown message ids, reconnects, several clients per user named or not, idempotency keys on
# deliveries, ties on a coarse time grid) the vectorised checker agrees with a direct,
# loop-by-loop reading of the definitions in semichat.checker's docstring.

PRIORITY = {"failed": 1, "unknown": 2, "ok": 3}


def client_of(e: Event) -> tuple[str, str]:
    return (e["user"], e.get("client") or e["user"])


def reference(events: list[Event], grace_s: float, late_ms: float) -> dict[str, dict[str, int]]:
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
    # Unknown sends by key, in log order; a delivery names one by its own key or, failing that,
    # by the key another delivery of its messageId carried (the later send wins a conflict).
    unknown: list[Event] = []
    for e in events:
        if e["type"] == "send" and e["outcome"] == "unknown" and e["idempotencyKey"]:
            if all(u["idempotencyKey"] != e["idempotencyKey"] for u in unknown):
                unknown.append(e)
    index = {u["idempotencyKey"]: i for i, u in enumerate(unknown)}
    bridge: dict[str, int] = {}
    for e in events:
        if e["type"] in ("notification", "view") and e.get("idempotencyKey") in index:
            if e["messageId"] is not None:
                bridge[e["messageId"]] = max(
                    bridge.get(e["messageId"], -1), index[e["idempotencyKey"]]
                )

    streams: dict[str, list[Any]] = {}
    for e in events:
        if e["type"] == "connect" and e["stream"] not in streams:
            streams[e["stream"]] = [e["user"], client_of(e), e["t"], None]
    for e in events:
        if e["type"] == "disconnect" and e["stream"] in streams:
            st_ = streams[e["stream"]]
            st_[3] = e["t"] if st_[3] is None else max(st_[3], e["t"])
    opened = [(u, c, s, max(s, run_end if e is None else e)) for u, c, s, e in streams.values()]
    wire = [(u, s, e) for u, _, s, e in opened]
    spans: dict[tuple[str, str], list[float]] = {}
    for e in events:
        if e["type"] == "view":
            spans.setdefault(client_of(e), []).append(e["t"])
    view = [(c, s, e) for _, c, s, e in opened] + [(c, min(ts), max(ts)) for c, ts in spans.items()]
    clients: dict[str, set[tuple[str, str]]] = {}
    for e in events:
        if e["type"] in ("connect", "view"):
            clients.setdefault(e["user"], set()).add(client_of(e))
    n_clients = sum(len(cs) for cs in clients.values())

    out: dict[str, dict[str, int]] = {}
    for level, kind, intervals in (("wire", "notification", wire), ("user_view", "view", view)):

        def unit(e: Event, level: str = level) -> Any:
            return e["user"] if level == "wire" else client_of(e)

        def units_of(u: str, level: str = level) -> list[Any]:
            # A user that recorded no client has one stand-in, never present.
            return [u] if level == "wire" else sorted(clients.get(u, {(u, "stand-in")}))

        received: dict[tuple[str, Any], list[tuple[float, int, int]]] = {}
        for pos, e in enumerate(events):
            if e["type"] == kind:
                mid = e["messageId"]
                st_ = status.get(mid, 0)
                j = index.get(e.get("idempotencyKey"), bridge.get(mid, -1))
                if st_ < 2 and j >= 0:
                    st_ = 2
                else:
                    j = -1
                received.setdefault((mid, unit(e)), []).append((e["t"], pos, st_ * 100 + j + 1))
        counts = dict.fromkeys(
            ["expected", "delivered", "lost", "not_expected", "misdirected", "reordered", "late"],
            0,
        )
        latency = 0
        for mid, s in ok.items():
            for u in dict.fromkeys(s["recipients"]):
                for c in units_of(u):
                    present = s["ackedAt"] <= limit and any(
                        iu == c and a <= limit and b >= s["ackedAt"] for iu, a, b in intervals
                    )
                    got = received.get((mid, c))
                    counts["expected" if present else "not_expected"] += 1
                    if present:
                        counts["delivered" if got else "lost"] += 1
                        latency += bool(got)
                        if got:
                            counts["late"] += (min(got)[0] - s["t"]) * 1000.0 > late_ms
        firsts = []
        statuses = []
        for (mid, c), copies in received.items():
            t, _, code = min(copies)  # the first copy; ties go to the earlier line of the log
            st_, j = divmod(code, 100)
            statuses.append(st_)
            u = c if level == "wire" else c[0]
            if st_ == 3 and u not in ok[mid]["recipients"]:
                counts["misdirected"] += 1
            if st_ >= 2:
                s = unknown[j - 1] if j else first_send[mid]
                firsts.append((c, s["conversationId"], t, s["t"], s.get("ackedAt")))
        for c, conv, t, _, acked in firsts:
            counts["reordered"] += acked is not None and any(
                c2 == c and v2 == conv and t2 < t and sent2 > acked
                for c2, v2, t2, sent2, _ in firsts
            )
        counts |= {
            "duplicated": sum(len(ts) > 1 for ts in received.values()),
            "duplicate_copies": sum(len(ts) - 1 for ts in received.values()),
            "unexpected": sum(st_ <= 1 for st_ in statuses),
            "recovered": sum(st_ == 2 for st_ in statuses),
            "latency_count": latency,
        }
        if level == "user_view":
            counts["clients"] = n_clients
        out[level] = counts
    return out


@st.composite
def messy_histories(draw: st.DrawFn) -> list[Event]:
    users = ["a", "b", "c", "d"][: draw(st.integers(2, 4))]
    mids = [f"m{i}" for i in range(6)]
    time = st.integers(0, 20).map(float)  # a coarse grid, so ties and boundaries happen
    # Tabs: unnamed (the user's one client), or named; "t0" of a and of b are different clients.
    client = st.sampled_from([None, "t0", "t1"])
    key = st.sampled_from([None, None, "k0", "k1", "k2", "k3", "kx"])
    events: list[Event] = []
    for i in range(draw(st.integers(0, 8))):
        t = draw(time)
        outcome = draw(st.sampled_from(["ok", "ok", "ok", "unknown", "unknown", "failed"]))
        mid = draw(st.sampled_from([*mids, None])) if outcome == "unknown" else None
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
                "messageId": {"ok": draw(st.sampled_from(mids)), "failed": f"f{i}"}.get(
                    outcome, mid
                ),
                "ackedAt": t + draw(st.integers(0, 4)) if outcome == "ok" else None,
                "attempts": 1,
            }
        )
    for i in range(draw(st.integers(0, 6))):
        u, t, c = draw(st.sampled_from(users)), draw(time), draw(client)
        events.append({"type": "connect", "t": t, "user": u, "stream": f"s{i}", "client": c})
        if draw(st.booleans()):
            t_end = t + draw(st.integers(0, 10))
            events.append({"type": "disconnect", "t": t_end, "user": u, "stream": f"s{i}"})
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["notification", "view"]))
        e = delivery(
            kind,
            draw(st.sampled_from(users)),
            draw(st.sampled_from([*mids, "f0", "ghost", "srv"])),
            draw(time),
            "c1",
        )
        if kind == "view":
            e["client"] = draw(client)
        k = draw(key)
        events.append(e if k is None else {**e, "idempotencyKey": k})
    if draw(st.booleans()):
        events.append({"type": "run", "t": draw(time) + 5.0, "phase": "end"})
    return events


@settings(max_examples=examples(300), deadline=None)
@given(messy_histories(), st.sampled_from([0.0, 3.0, 5.0]), st.sampled_from([1000.0, 5000.0]))
def test_checker_agrees_with_a_direct_reading_of_the_definitions(
    events: list[Event], grace_s: float, late_ms: float
) -> None:
    if not events:
        return
    result = check(events_frame(events), grace_s=grace_s, late_ms=late_ms)
    for level, want in reference(events, grace_s, late_ms).items():
        got = {k: result[level][k] for k in want if k != "latency_count"}
        got["latency_count"] = result[level]["latency_ms"]["count"]
        assert got == want, level
