"""The capacity model's server CPU (`semichat/model/cpu.py`): one event loop run in iterations,
given the share of a core the process got. A smaller share coalesces more (fewer marks per
send), as the loaded runs measured; the default is a whole core, as on AWS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import simpy

from semichat.harness.report import emulator_usage
from semichat.harness.usage_report import backend_usage
from semichat.model.cpu import WHOLE_CORE, Cpu, measured_share
from semichat.model.inputs import Activity, ModelInputError, Setup
from semichat.model.profile import LatencyProfile, load_profile
from semichat.model.simulation import Window, simulate
from semichat.model.validation import run_cpu_ms, run_cpu_share
from semichat.model.world import USER
from semichat.server.scheduling import run_queue, schedstat

PROFILE = Path(__file__).resolve().parents[1] / "semichat" / "model" / "profiles" / "embedded.json"


@pytest.fixture(scope="module")
def profile() -> LatencyProfile:
    return load_profile(PROFILE)


def test_the_default_share_is_a_whole_core() -> None:
    assert Setup().cpu_share == WHOLE_CORE == 1.0
    # A run that did not record its run-queue wait is modelled on a whole core too.
    assert run_cpu_share({"backend": {"server_cpu_s": 8.6}}) == WHOLE_CORE


def test_the_share_is_cpu_over_cpu_and_waiting() -> None:
    assert measured_share(12.0, 18.0) == pytest.approx(0.4)
    assert measured_share(None, 3.0) == WHOLE_CORE
    results = {
        "backend": {
            "server_cpu_s": 11.0,
            "server_cpu_wait_s": 11.0,
            "server_cpu_turns": 11_000,
            "requests": {"sqs:SendMessage": 5_000, "dynamodb:Query": 5_000},
        }
    }
    assert run_cpu_share(results) == pytest.approx(0.5)
    assert run_cpu_ms(results) == pytest.approx(1.1)


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_a_share_out_of_range_is_refused(share: float) -> None:
    with pytest.raises(ModelInputError, match="CPU share must be in"):
        Setup(cpu_share=share).check()


def test_answers_arriving_while_the_loop_works_are_handled_in_one_iteration() -> None:
    """The next iteration takes the three that arrived during the first; asyncio runs their
    continuations one after another, each in its turn, and `iteration_end` (where
    `asyncio.sleep(0)` resumes) comes after the last."""
    env = simpy.Environment()
    cpu = Cpu(env, cpu_s=0.010)
    handled_at: list[float] = []
    iteration_ended: list[float] = []

    def answer(at: float) -> simpy.events.ProcessGenerator:
        yield env.timeout(at)
        yield cpu.handle()
        handled_at.append(env.now)
        if len(handled_at) == 2:  # the second iteration's first continuation
            yield cpu.iteration_end()
            iteration_ended.append(env.now)

    for at in (0.0, 0.002, 0.004, 0.006):  # three arrive during the first one's 10 ms
        env.process(answer(at))
    env.run()
    assert cpu.iterations == 2
    assert handled_at == pytest.approx([0.010, 0.020, 0.030, 0.040])
    assert iteration_ended == pytest.approx([0.040])


def test_the_server_reads_its_own_run_queue_wait() -> None:
    got = run_queue()
    if Path("/proc/self/task").is_dir():  # Linux, where the runs are made
        assert got is not None
        waited, turns = got
        assert waited >= 0 and turns > 0
    else:
        assert got is None


def _marks_per_send(profile: LatencyProfile, share: float) -> float:
    activity = Activity(users=60)
    setup = Setup(routing="per_user_queue", cpu_share=share)
    marks = sends = 0.0
    for seed in (1, 2):
        sim = simulate(activity, setup, profile, Window(duration_s=20.0), seed=seed)
        marks += sim.tally.requests[USER]["dynamodb:BatchWriteItem"]
        sends += sim.sends
    return marks / sends


def test_a_smaller_share_coalesces_more_marks_into_each_batch(profile: LatencyProfile) -> None:
    whole = _marks_per_send(profile, 1.0)
    loaded = _marks_per_send(profile, 0.25)
    # The loaded runs wrote fewer marks per send than the model on a whole core (docs/
    # capacity.md): a smaller share must move the model the same way, and by a real amount.
    assert loaded < 0.9 * whole


def test_a_runs_usage_sums_the_servers_run_queue_wait_over_its_lives() -> None:
    def life(cpu: float, wait: float, turns: int) -> dict[str, object]:
        return {"backend": {}, "cpu_s": cpu, "cpu_wait_s": wait, "cpu_turns": turns}

    lives = [(life(1.0, 0.5, 100), life(5.0, 6.5, 5100)), (life(0.0, 0.0, 0), life(2.0, 1.0, 900))]
    usage = backend_usage(lives)
    assert usage is not None
    assert usage["server_cpu_s"] == pytest.approx(6.0)
    assert usage["server_cpu_wait_s"] == pytest.approx(7.0)
    assert usage["server_cpu_turns"] == 5900
    # A server that did not report it (another platform, an older build): unknown, not zero.
    older = backend_usage([({"backend": {}, "cpu_s": 0.0}, {"backend": {}, "cpu_s": 1.0})])
    assert older is not None and older["server_cpu_wait_s"] is None


def test_a_process_schedstat_is_read_by_pid(tmp_path: Path) -> None:
    import os

    got = schedstat(os.getpid())
    if Path("/proc/self/task").is_dir():
        assert got is not None and got["cpu_s"] > 0 and got["cpu_turns"] > 0
    assert schedstat(2**31 - 1) is None  # no such process


def test_a_runs_emulators_usage_is_their_schedstat_over_the_run(tmp_path: Path) -> None:
    doc = {
        "before": [{"cpu_s": 1.0, "cpu_wait_s": 0.5, "cpu_turns": 10}, None],
        "after": [{"cpu_s": 4.0, "cpu_wait_s": 6.5, "cpu_turns": 3010}, None],
    }
    (tmp_path / "emulator_schedstats.json").write_text(json.dumps(doc))
    assert emulator_usage(tmp_path) == [{"cpu_s": 3.0, "cpu_wait_s": 6.0, "cpu_turns": 3000}]
    assert emulator_usage(tmp_path / "elsewhere") == []
