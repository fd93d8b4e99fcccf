"""When a run's users opened their streams (`semichat/model/opens.py`), replayed by the model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from semichat.aws.batches import REGISTRATIONS_COMMIT
from semichat.aws.latency import Distribution
from semichat.model.inputs import Activity, Setup
from semichat.model.opens import kept_record, stream_opens
from semichat.model.profile import LatencyProfile, load_profile
from semichat.model.simulation import Window, simulate
from semichat.model.world import USER

PROFILE = Path(__file__).resolve().parents[1] / "semichat" / "model" / "profiles" / "embedded.json"


def test_each_users_first_stream_request_is_read_from_its_connect_events(tmp_path: Path) -> None:
    events = [
        {"type": "run", "t": 100.0, "phase": "start"},
        # ready 0.5 s in, asked for 120 ms before: opened at 0.38 s; its later reconnect not.
        {"type": "connect", "t": 100.5, "user": "sim-1-w0-u7", "stream": "a", "setup_ms": 120.0},
        {"type": "connect", "t": 104.0, "user": "sim-1-w0-u7", "stream": "b", "setup_ms": 10.0},
        {"type": "connect", "t": 100.25, "user": "sim-1-w0-u2", "stream": "c", "setup_ms": 50.0},
    ]
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "w.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    opens = stream_opens(tmp_path)
    assert opens.keys() == {2, 7}
    assert round(opens[7], 6) == 0.38 and round(opens[2], 6) == 0.2
    assert kept_record(tmp_path) == [[2, 0.2], [7, 0.38]]


def test_streams_opening_together_as_the_run_did_share_registration_writes() -> None:
    """Three `instance` users whose streams the run opened at the same instant register in
    one write (submitted in one loop iteration); spread over the two seconds of the default
    spawn, each has a write of its own."""
    base = load_profile(PROFILE)
    slow = Distribution.from_percentiles({"50": 100.0, "99": 100.0})
    profile = LatencyProfile("test", {**base.operations, REGISTRATIONS_COMMIT: slow})
    activity = Activity(users=3, send_interval_s=1000.0)  # nobody sends in the window
    setup = Setup(routing="instance", cpu_ms_per_request=0.0)
    window = Window(duration_s=2.5, drain_s=0.0, close_at_end=False)
    writes = {}
    for name, w in (
        ("spread", window),
        ("together", replace(window, opens=((0, 0.5), (1, 0.5), (2, 0.5)))),
    ):
        sim = simulate(activity, setup, profile, w, seed=1)
        writes[name] = sim.tally.requests[USER]["dynamodb:BatchWriteItem"]
    assert writes == {"spread": 3, "together": 1}
