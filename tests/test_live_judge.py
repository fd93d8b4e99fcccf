"""The checker while a run goes on (`semichat.harness.live`): each delivered pair's latency once,
lost only once a message is old enough, and the final judgement the checker's own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from semichat.harness.checker import check
from semichat.harness.events import events_frame
from semichat.harness.live import LIVE_GRACE_S, EventTail, LiveJudge

from .test_checker import USERS, connect, end, note, send, view


def test_each_delivered_pair_fires_its_latency_once_across_judgements() -> None:
    judge = LiveJudge()
    events = [connect(u) for u in USERS] + [send("m1", 1.0)]
    events += [note("b", "m1", 1.2), view("b", "m1", 1.3)]
    events += [note("a", "m100", 40.0)]  # a later event: the run so far ends at 40 s
    first = judge.update(events_frame(events), grace_s=5.0)
    assert first["latencies"]["wire"] == [200.0]
    assert first["latencies"]["user_view"] == [300.0]
    # m1 was acknowledged 38.9 s before the newest event: a and c missing it are lost so far.
    assert first["faults"]["wire"] == {"lost": 2}  # m100's send may not be recorded yet
    events += [note("c", "m1", 41.0)]  # late, not lost after all; and a duplicate of b's
    events += [note("b", "m1", 41.5)]
    second = judge.update(events_frame(events), grace_s=5.0)
    assert second["latencies"]["wire"] == [40000.0]  # c's, once; b's not again
    assert second["faults"]["wire"] == {"duplicated": 1}  # lost shrank: nothing more fired
    assert second["results"]["wire"]["lost"] == 1


def test_a_delivery_seen_before_its_send_is_recorded_is_not_unexpected() -> None:
    """A send is recorded once acknowledged; its notification may come first."""
    judge = LiveJudge()
    events = [connect(u) for u in USERS] + [note("b", "m1", 1.2)]
    assert judge.update(events_frame(events), grace_s=5.0)["faults"]["wire"] == {}
    events += [send("m1", 1.0, acked=1.5), connect("c", 20.0, stream="s-c2")]  # time passes
    second = judge.update(events_frame(events), grace_s=5.0)
    assert second["latencies"]["wire"] == [200.0]
    assert second["faults"]["wire"] == {"lost": 2}  # a and c, m1 now 18.5 s old
    events += [note("a", "m7", 2.0), end(30.0)]  # a message nobody sent
    final = judge.update(events_frame(events), grace_s=5.0, final=True)
    assert final["faults"]["wire"] == {"unexpected": 1}


def test_a_recent_message_is_pending_not_lost_while_the_run_goes_on() -> None:
    judge = LiveJudge()
    events = [connect(u) for u in USERS] + [send("m1", 1.0), note("a", "m9", 1.0 + LIVE_GRACE_S)]
    update = judge.update(events_frame(events), grace_s=0.0)
    wire = update["results"]["wire"]
    assert wire["lost"] == 0 and wire["pending"] == wire["expected"] == 3
    assert "lost" not in update["faults"]["wire"]


def test_the_final_judgement_counts_as_the_checker_does() -> None:
    judge = LiveJudge()
    events = [connect(u) for u in USERS] + [send("m1", 1.0), note("a", "m1", 1.5), end(3.0)]
    update = judge.update(events_frame(events), grace_s=1.0, final=True)
    exact = check(events_frame(events), grace_s=1.0)
    assert update["results"]["wire"]["lost"] == exact["wire"]["lost"] == 2
    assert update["faults"]["wire"]["lost"] == 2
    assert update["results"]["wire"]["pending"] == 0


def test_the_tail_reads_only_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "events" / "a.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps(connect("a")) + "\n" + '{"type": "send", "t"')
    tail = EventTail(tmp_path / "events")
    assert tail.read() == 1
    with path.open("a") as f:
        f.write(': 2.0, "user": "a"}\n')
    assert tail.read() == 1
    assert [r["type"] for r in tail.records] == ["connect", "send"]
    assert tail.read() == 0


def test_the_child_process_prints_a_final_judgement_on_request(tmp_path: Path) -> None:
    events = [connect(u) for u in USERS] + [send("m1", 1.0), note("a", "m1", 1.25), end(20.0)]
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "a.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    proc = subprocess.run(
        [sys.executable, "-m", "semichat.harness.live", str(tmp_path), "--grace", "5"],
        input="final\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["final"] is True
    assert last["latencies"]["wire"] == [250.0]
    assert last["results"]["wire"]["lost"] == 2
