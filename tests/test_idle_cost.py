"""The harness's cost figures for strategies: the steady window and the users provisioned."""

from __future__ import annotations

from typing import Any

from semichat.harness.report import steady_cost
from semichat.harness.scenarios import scenario_knobs, scenario_names
from semichat.harness.simulate import SimulationParams, simulated_users


def sample(t: float, streams: int, requests: int) -> dict[str, Any]:
    return {"time": t, "sqs": {"open_streams": streams, "requests": requests}}


def test_steady_window_leaves_out_the_ramp_and_the_drain() -> None:
    samples = [
        sample(0, 0, 0),
        sample(5, 50, 400),  # the ramp: queue creation is expensive
        sample(10, 100, 500),
        sample(70, 100, 800),  # 300 requests, 100 streams, 1 minute
        sample(75, 10, 900),  # the drain
    ]
    steady = steady_cost(samples)
    assert steady is not None
    assert steady["per_stream_minute"] == 3.0
    assert steady["open_streams"] == 100


def test_no_steady_window_without_streams() -> None:
    assert steady_cost([sample(0, 0, 0), sample(5, 0, 3)]) is None
    assert steady_cost([sample(0, 4, 0)]) is None


def test_idle_scenario_has_nobody_chatting_by_default() -> None:
    assert "idle" in scenario_names()
    assert scenario_knobs("idle")["active"] == 0
    params = SimulationParams.for_scenario("idle", {"active": 3}, users=9, duration=1)
    assert params.load.active == 3


def test_provisioned_users_are_those_locust_will_number() -> None:
    params = SimulationParams.for_scenario("chat", {}, users=5, duration=1, processes=2)
    users = simulated_users(params, "sim-x")
    assert users == [f"sim-x-w{w}-u{i}" for w in (0, 1) for i in range(3)]
