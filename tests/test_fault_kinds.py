"""Each fault kind on a short run: the wire shows the anomaly that kind causes, at a rate
consistent with the rate injected, and the user view stays whole.

One `semichat simulate` per group of kinds (six users in pairs of three, a send a second each):
what the wire suffered is judged by the checker from client records alone; what was injected
comes from the server's counters in `results.json`, and the two are compared here.

Kinds share a run where their signatures cannot be confused. Each kind states (`Effect`) what it
may do to each wire anomaly: nothing (0), at most a bound computed from its own counters, or
anything (None, where a single run of it never showed a bound to hold); and the anomalies it must
show. A run's bound on an anomaly is the sum of its kinds' bounds (None if any is None). So a
group keeps every kind's own counter checks and every anomaly it shows; the only bounds that
loosen are sums of bounds, and no kind that must show an anomaly shares a run with another cause
of it (`test_groups_keep_each_kind_the_sole_cause_of_what_it_shows`).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

USERS = 6
# The chat scenario's conversations: three members, the sender one of them.
MEMBERS = 3
DURATION_S = 10
DRAIN_S = 8
# A killed server's long polls go on in the backend and take what arrives, invisible for the
# visibility timeout: a message whose only notification they took shows in the view at the
# recipient's next refetch, or when it comes back. The crash run shortens that timeout from its
# 30 s default, and its drain outlasts it.
CRASH_VISIBILITY_TIMEOUT_S = 10
DRAIN_AFTER_CRASH_S = CRASH_VISIBILITY_TIMEOUT_S + 6
ANOMALIES = ("lost", "duplicated", "reordered")

Results = dict[str, Any]
Bound = Callable[[Results], int] | None


def _binomially_consistent(hits: int, trials: int, p: float) -> bool:
    """`hits` is what a rate `p` gives in `trials` tries, within four standard deviations (one
    false alarm in about 16,000 runs) and one of slack for small counts."""
    mean = trials * p
    return abs(hits - mean) <= 4 * math.sqrt(trials * p * (1 - p)) + 1


def _injected(r: Results, kind: str) -> int:
    return int(r["faults"]["injected"].get(kind, 0))


def _none(r: Results) -> int:
    return 0


@dataclass(frozen=True)
class Effect:
    """What one fault kind does: `check` asserts on its own counters; `bounds` says, per wire
    anomaly, at most how many it may cause (absent: none at all; None: no bound known); it must
    show each anomaly in `shows`."""

    check: Callable[[Results], None]
    bounds: dict[str, Bound] = field(default_factory=dict)
    shows: tuple[str, ...] = ()


def _duplicate(r: Results) -> None:
    sqs = r["sqs"]["requests"]
    # Every delete "succeeds"; a struck one is counted deleted and comes back 1 to 3 s later.
    assert _binomially_consistent(_injected(r, "duplicate"), sqs["messages_deleted"], 0.2), sqs


def _reorder(r: Results) -> None:
    sqs = r["sqs"]["requests"]
    assert _binomially_consistent(_injected(r, "reorder"), sqs["send"], 0.3), sqs


def _attempts(r: Results, operation: str) -> int:
    """Attempts botocore made of `operation` (`sqs.DeleteMessage`), retries included: the
    trials of a wire fault, which strikes attempts, not calls."""
    return sum(n for k, n in r["botocore"]["attempts"].items() if k.startswith(operation))


def _retried(r: Results, operation: str) -> int:
    return sum(n for k, n in r["botocore"]["retries"].items() if k.startswith(operation))


def _delete_fail(r: Results) -> None:
    injected, sqs = _injected(r, "delete_fail"), r["sqs"]["requests"]
    assert _binomially_consistent(injected, _attempts(r, "sqs.DeleteMessage"), 0.4), r["botocore"]
    # botocore retried most of them; a delete whose 3 attempts all failed is retried as a
    # release, so the notification comes again at once.
    assert _retried(r, "sqs.DeleteMessage") > 0
    assert 0 < sqs["messages_released"] <= injected


def _receive_error(r: Results) -> None:
    injected = _injected(r, "receive_error")
    assert _binomially_consistent(injected, _attempts(r, "sqs.ReceiveMessage"), 0.2)
    # At the wire, beneath botocore: it retried them, and the app saw far fewer.
    assert _retried(r, "sqs.ReceiveMessage") > 0
    assert r["sqs"]["requests"]["errors"] < injected


def _send_error(r: Results) -> None:
    injected = _injected(r, "send_error")
    # 40 % of attempts; botocore makes 3, so a SendMessage fails for the app 6.4 % of the
    # time, a fan-out to three 18 %, and all six attempts of a client's send about once in
    # 30,000 sends: every send completes.
    assert _binomially_consistent(injected, _attempts(r, "sqs.SendMessage"), 0.4), r["botocore"]
    assert _retried(r, "sqs.SendMessage") > 0
    # A failed fan-out answers 503; the client's retry with the same key completes it.
    assert int(r["locust"]["/api/chat/send"]["Failure Count"]) > 0
    assert r["sends"]["unknown"] == 0 and r["sends"]["ok"] == r["sends"]["attempted"]


def _stream_cut(r: Results) -> None:
    # Cuts after about 3 s: each user's stream is cut several times over an 18 s run.
    assert _injected(r, "stream_cut") >= USERS
    # Clients saw cuts and came back. Not one for one: a cut can land before a loaded client
    # has read `ready`, and then it records neither a connect nor a disconnect.
    assert r["streams"]["connects"] > USERS and r["streams"]["disconnects"] > USERS


def _lost_write(r: Results) -> None:
    sqs = r["sqs"]["requests"]
    assert _binomially_consistent(_injected(r, "lost_write"), sqs["messages_deleted"], 0.1), sqs
    # Each lost write cuts the stream too.
    assert r["streams"]["connects"] > USERS


def _create_throttle(r: Results) -> None:
    injected = _injected(r, "create_throttle")
    # Each throttled attempt is one more attempt, retried by botocore (and, if all 3 failed,
    # by the client): every user got a queue and a stream.
    assert injected > 0 and _retried(r, "sqs.CreateQueue") > 0
    assert _attempts(r, "sqs.CreateQueue") == USERS + injected
    assert r["streams"]["users"] == USERS


def _queue_delete(r: Results) -> None:
    # An idle queue deleted behind the app is re-created when its stream next polls it.
    assert _injected(r, "queue_delete") > 0
    assert r["sqs"]["requests"]["create_queue"] >= USERS + 1


def _crash(r: Results) -> None:
    assert _injected(r, "crash") == 1
    # The client's sends retry for about 9 s, as the widget does, across the restart.
    assert r["sends"]["unknown"] == 0


EFFECTS: dict[str, Effect] = {
    "duplicate": Effect(
        _duplicate,
        {"duplicated": lambda r: _injected(r, "duplicate"), "reordered": None},
        ("duplicated",),
    ),
    "reorder": Effect(_reorder, {"reordered": None}, ("reordered",)),
    "delete_fail": Effect(
        _delete_fail,
        {"duplicated": lambda r: _injected(r, "delete_fail"), "reordered": None},
        ("duplicated",),
    ),
    "receive_error": Effect(_receive_error, {"reordered": None}),
    # A failed fan-out re-announces, on its retry, to recipients that may have had it already;
    # a struck attempt that reached the queue lands again on botocore's retry. A 503 takes
    # three struck attempts, so both together stay under MEMBERS per injected error.
    "send_error": Effect(
        _send_error,
        {"duplicated": lambda r: MEMBERS * _injected(r, "send_error"), "reordered": None},
    ),
    # A cut lands between notifications, never on one that was written.
    "stream_cut": Effect(_stream_cut, {"duplicated": None, "reordered": None}),
    # Each lost write drops one acknowledged notification on the wire.
    "lost_write": Effect(
        _lost_write,
        {"lost": lambda r: _injected(r, "lost_write"), "duplicated": None, "reordered": None},
        ("lost",),
    ),
    # A send that had to create a recipient's queue answers 503 when throttled (a `fanout`
    # refusal; a throttled stream is a `throttled` one and duplicates nothing). Its retry
    # announces again to the members the failed fan-out reached: at most all but one.
    "create_throttle": Effect(
        _create_throttle,
        {
            "duplicated": lambda r: (MEMBERS - 1) * r["faults"]["refusals"].get("fanout", 0),
            "reordered": None,
        },
    ),
    "queue_delete": Effect(_queue_delete, {"lost": None, "reordered": None}),
    "crash": Effect(_crash, dict.fromkeys(ANOMALIES)),
}

# The runs: kinds that share one are told apart by their own counters and bounds.
GROUPS: dict[str, str] = {
    "reorder": "reorder=0.3",
    # The wire kinds at rates botocore's 3 attempts do not absorb, so that the app sees some.
    "send_error+create_throttle": "send_error=0.4,create_throttle=0.5",
    "duplicate+receive_error": "duplicate=0.2,receive_error=0.2",
    "delete_fail": "delete_fail=0.4",
    "stream_cut+lost_write": "stream_cut=3,lost_write=0.1",
    "queue_delete": "queue_delete=40",
    "crash": "crash=5",
}


def kinds_of(spec: str) -> list[str]:
    return [part.split("=")[0] for part in spec.split(",")]


def run_bound(kinds: list[str], anomaly: str, r: Results) -> int | None:
    """The most of `anomaly` the run's kinds may cause together (None: no bound)."""
    total = 0
    for kind in kinds:
        bounds = EFFECTS[kind].bounds
        if anomaly not in bounds:
            continue
        bound = bounds[anomaly]
        if bound is None:
            return None
        total += bound(r)
    return total


def test_every_kind_runs_once() -> None:
    runs = [k for spec in GROUPS.values() for k in kinds_of(spec)]
    assert sorted(runs) == sorted(EFFECTS)


def test_groups_keep_each_kind_the_sole_cause_of_what_it_shows() -> None:
    for spec in GROUPS.values():
        kinds = kinds_of(spec)
        for kind in kinds:
            for anomaly in EFFECTS[kind].shows:
                others = [k for k in kinds if k != kind and anomaly in EFFECTS[k].bounds]
                assert not others, (spec, kind, anomaly, others)


def test_a_runs_bound_is_the_sum_of_its_kinds_bounds() -> None:
    r: Results = {"faults": {"injected": {"send_error": 2}, "refusals": {"fanout": 3}}}
    both = ["send_error", "create_throttle"]
    assert run_bound(both, "duplicated", r) == MEMBERS * 2 + (MEMBERS - 1) * 3
    assert run_bound(both, "lost", r) == 0
    assert run_bound(["reorder", "crash"], "duplicated", r) is None


@pytest.fixture(params=sorted(GROUPS))
def fault_run(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Results]:
    spec = f"{GROUPS[request.param]},seed=1"
    env = dict(os.environ)
    drain = DRAIN_S
    if "crash" in kinds_of(spec):
        drain = DRAIN_AFTER_CRASH_S
        env["SEMICHAT_VISIBILITY_TIMEOUT"] = str(CRASH_VISIBILITY_TIMEOUT_S)
    cmd = [sys.executable, "-m", "semichat", "simulate", "--scenario", "chat",
           "--users", str(USERS), "--duration", str(DURATION_S), "--drain", str(drain),
           "--send-interval", "1", "--faults", spec, "--out", str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = (tmp_path / "chat" / "latest").resolve()
    return GROUPS[request.param], json.loads((run / "results.json").read_text())


def test_each_fault_kind_shows_on_the_wire_and_the_user_view_stays_whole(
    fault_run: tuple[str, Results],
) -> None:
    spec, results = fault_run
    kinds = kinds_of(spec)
    print(spec, json.dumps({k: results[k] for k in ("faults", "sends", "streams")}))
    print({k: results["wire"][k] for k in ("delivered", *ANOMALIES)})
    for kind in kinds:
        EFFECTS[kind].check(results)
    wire = results["wire"]
    for anomaly in ANOMALIES:
        bound = run_bound(kinds, anomaly, results)
        if bound is not None:
            assert wire[anomaly] <= bound, (anomaly, wire[anomaly], bound)
        if any(anomaly in EFFECTS[k].shows for k in kinds):
            assert wire[anomaly] > 0, anomaly
    view = results["user_view"]
    assert (view["lost"], view["duplicated"], view["reordered"]) == (0, 0, 0), view
    assert view["delivered"] == view["expected"] > 0
