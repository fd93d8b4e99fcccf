"""The capacity model (`semichat/model/`): its inputs refused in one line, its scaling from one
process's sample checked, and its units and requests against a measured run's counted ones."""

from __future__ import annotations

import json
import math
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from semichat.cli import main
from semichat.model.agreement import agreement
from semichat.model.inputs import Activity, ProcessLimits, Setup
from semichat.model.profile import LatencyProfile, as_document, load_profile
from semichat.model.scale import estimate, sample_run
from semichat.model.validation import Row, validate
from semichat.model.world import USER

DATA = Path(__file__).parent / "data" / "capacity"
RUN = DATA / "per_user_queue-100"
LIGHT_RUN = DATA / "per_user_queue-20-light"
PROFILE = Path(__file__).resolve().parents[1] / "semichat" / "model" / "profiles" / "embedded.json"


@pytest.fixture(scope="module")
def profile() -> LatencyProfile:
    return load_profile(PROFILE)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--users", "-5"], "users must be at least 1, not -5"),
        (["--routing", "carrier-pigeon"], "unknown strategy 'carrier-pigeon'"),
        (["--send-interval", "0"], "send interval must be > 0 s"),
    ],
)
def test_an_input_out_of_range_is_refused_in_one_line_naming_it(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["model", *argv])
    message = str(exit_.value.code)
    assert named in message
    assert "\n" not in message


def test_a_profile_without_an_operation_the_strategy_uses_is_refused(tmp_path: Path) -> None:
    doc = json.loads(PROFILE.read_text())
    del doc["operations"]["sqs:DeleteMessageBatch"]
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SystemExit) as exit_:
        main(["model", "--routing", "sharded", "--users", "30", "--profile", str(path)])
    assert "lacks operation sqs:DeleteMessageBatch" in str(exit_.value.code)


def test_a_profile_written_out_loads_back(tmp_path: Path, profile: LatencyProfile) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(as_document(profile)))
    again = load_profile(path)
    assert set(again.operations) == set(profile.operations)


BATCHED = ("sqs:ReceiveMessage.messages", "sqs:DeleteMessageBatch")


@pytest.mark.parametrize("routing", ["per_user_queue", "sharded", "instance"])
def test_twice_the_sample_causes_twice_the_user_requests(
    routing: str, profile: LatencyProfile
) -> None:
    """The scaling rule: requests the users cause grow with the users (within 5 %), so one
    process's sample stands for many; a shared queue's receives (and their batch deletes)
    batch more as traffic grows, so linear scaling is an upper bound for them."""
    setup, limits = Setup(routing=routing), ProcessLimits()
    linear, batched = [], []
    for n in (150, 300):
        sim = sample_run(Activity(users=n, send_interval_s=20), setup, profile, limits, n)
        window = sim.window.end_s - sim.window.measure_from_s
        counts = sim.tally.measured(USER)
        shared = routing not in ("per_user_queue",)
        linear.append(sum(v for k, v in counts.items() if not (shared and k in BATCHED)) / window)
        batched.append(sum(v for k, v in counts.items() if shared and k in BATCHED) / window)
    assert linear[1] == pytest.approx(2 * linear[0], rel=0.05)
    assert batched[1] <= 2 * batched[0] * 1.05


def test_a_million_users_need_a_thousand_per_user_queue_processes(
    profile: LatencyProfile,
) -> None:
    e = estimate(Activity(users=1_000_000, send_interval_s=600), Setup(), profile)
    assert e.processes == 1000
    assert e.queues == 1_000_000
    assert e.first_limit is not None and e.first_limit.users_at == 1000
    assert e.monthly["dollars"] > 0


def test_the_model_prices_each_request_as_the_server_counted_it() -> None:
    """A committed 100-user run (per_user_queue, embedded backend, kept by `records.keep`).
    The server counts DynamoDB units from each request's item sizes and read consistency
    (`semichat/aws/usage.py`); the model must price every request the same way."""
    rows = {r.figure: r for r in validate(RUN, replications=2)}
    for figure in (
        "read units per dynamodb:Query",
        "read units per dynamodb:GetItem",
        "write units per dynamodb:TransactWriteItems",
        "write units per dynamodb:PutItem",
        "dynamodb write units",
        "dynamodb:TransactWriteItems",
        "sqs:SendMessage",
        "sqs:DeleteMessage",
    ):
        ratio = rows[figure].ratio
        assert ratio is not None and abs(ratio - 1) <= 0.05, (figure, ratio)


def test_the_model_counts_a_light_runs_units_per_send_within_5_percent() -> None:
    """A 20-user run made on an idle machine (load average 1.2): the model's read and write
    units per send, history reads included, match what the server counted. (Per send: the
    number of sends is the clients' pace, which the next test does not depend on either.)"""
    rows = {r.figure: r for r in validate(LIGHT_RUN, replications=3)}
    sends = rows["sends"]
    for figure in ("dynamodb read units", "dynamodb write units", "dynamodb:Query"):
        row = rows[figure]
        assert row.measured and sends.measured
        ratio = (row.model / sends.model) / (row.measured / sends.measured)
        assert abs(ratio - 1) <= 0.05, (figure, ratio)


def test_the_cost_modules_units_are_those_a_run_counted() -> None:
    """`harness/cost.py` prices a message as the code makes it: a strongly consistent history
    read (1 unit per read of a catch-up page), the transaction and its mark (5 write units)."""
    from semichat.harness.cost import DYNAMODB_UNITS as U

    backend = json.loads((RUN / "results.json").read_text())["backend"]
    counted, n = backend["read_units"], backend["requests"]
    assert counted["dynamodb:Query"] / n["dynamodb:Query"] == pytest.approx(
        U["read_per_recipient"], rel=0.05
    )
    written = backend["write_units"]
    per_send = written["dynamodb:TransactWriteItems"] / n["dynamodb:TransactWriteItems"]
    marks = written["dynamodb:BatchWriteItem"] / n["dynamodb:TransactWriteItems"]
    assert per_send + marks == pytest.approx(U["write_per_message"], rel=0.05)


def test_model_prints_every_output_for_one_configuration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["model", "--routing", "instance", "--users", "20000", "--send-interval", "600"])
    out = capsys.readouterr().out
    for figure in (
        "server processes needed",
        "queues in existence",
        "in flight per queue",
        "long polls open per process",
        "wire_p50",
        "view_p99",
        "sqs:SendMessage",
        "dynamodb:Query",
        "dollars",
        "api_gateway_websocket_dollars",
        "appsync_realtime_dollars",
        "first limit met",
    ):
        assert figure in out, figure


def test_validate_prints_a_ratio_for_each_figure(capsys: pytest.CaptureFixture[str]) -> None:
    main(["model", "--validate", str(LIGHT_RUN), "--replications", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["figure", "model", "measured", "ratio"]
    assert any(line.startswith("user_view p99 (ms)") for line in lines)
    assert any(line.startswith("dynamodb read units") for line in lines)


def test_a_shard_message_is_forwarded_until_every_process_has_seen_it() -> None:
    """A coupon collector: P H(P) receives, one of them the first. A 2-process run measured
    1.95 forwards per shard message (docs/capacity.md)."""
    from semichat.model.limits import forwards

    assert forwards(1) == 0.0
    assert forwards(2) == pytest.approx(2.0)
    assert forwards(3) == pytest.approx(3 * (1 + 1 / 2 + 1 / 3) - 1)
    assert forwards(20_000) == pytest.approx(20_000 * (math.log(20_000) + 0.5772), rel=1e-3)


EMULATED_RUN = DATA / "per_user_queue-100-emulators"  # a run that recorded its emulators


def test_the_model_without_validate_has_no_emulator(profile: LatencyProfile) -> None:
    """AWS has no emulator queue: the model of one configuration carries none."""
    from semichat.model.world import World

    assert World(Activity(users=30), Setup(), profile).emulators == {}


def test_validate_queues_at_each_emulator_for_its_measured_cpu_per_request() -> None:
    """The run's DynamoDB emulator spent 7.004 s of CPU on the 6,763 DynamoDB requests the
    server counted; its SQS emulator 9.134 s on 12,705 SQS requests."""
    rows = {r.figure: r for r in validate(EMULATED_RUN, replications=1, emulators=True)}
    assert rows["dynamodb emulator CPU (input, ms a request)"].model == pytest.approx(
        1000 * 7.004 / 6763, rel=1e-3
    )
    assert rows["sqs emulator CPU (input, ms a request)"].model == pytest.approx(
        1000 * 9.134 / 12705, rel=1e-3
    )
    # Its threads' run-queue waits overlap: runnable longer than the run, so not a share.
    assert rows["sqs emulator runnable (% of the run)"].model > 100
    without = {r.figure for r in validate(EMULATED_RUN, replications=1)}
    assert not any("emulator CPU" in f for f in without)


def test_an_emulator_whose_recorded_cpu_is_not_positive_is_not_queued_at() -> None:
    """Its CPU is summed over the threads alive at each end of the run: moto's connection
    threads that end meanwhile take theirs with them, so a nearly idle emulator can record
    less than nothing (a 20-user idle `instance` run: -0.002 s for its one SQS request).
    Unknown, not a service time: the model does not queue there, rather than refuse the run."""
    from semichat.model.emulators import service_ms

    results = {
        "backend": {
            "requests": {"dynamodb:Query": 20, "sqs:ReceiveMessage.empty": 1},
            "emulators": [{"cpu_s": 0.019}, {"cpu_s": -0.002}],
        }
    }
    assert service_ms(results) == (("dynamodb", pytest.approx(0.95)),)


def test_an_emulator_answers_requests_back_to_back_one_at_a_time() -> None:
    import simpy

    from semichat.model.emulators import Emulator

    env = simpy.Environment()
    emulator = Emulator(env, service_s=0.002)
    answered: list[float] = []

    def request() -> Generator[Any, Any, None]:
        yield from emulator.serve()
        answered.append(env.now)

    for _ in range(4):
        env.process(request())
    env.run()
    assert answered == pytest.approx([0.002, 0.004, 0.006, 0.008])


def test_marks_of_one_loop_iteration_share_one_write(profile: LatencyProfile) -> None:
    """`GroupCommit._flush` yields once (`asyncio.sleep(0)`) before writing: marks submitted
    by the continuations of one iteration of the server's loop (answers that arrived
    together, each run in its turn) go out in one BatchWriteItem."""
    from semichat.model.chat import GroupCommit
    from semichat.model.world import World

    world = World(Activity(users=3), Setup(), profile)
    marks = GroupCommit(world)

    def send() -> Generator[Any, Any, None]:
        yield world.cpu.handle()  # its transaction's answer, handled by the loop
        yield marks.submit()

    for _ in range(3):
        world.env.process(send())
    world.env.run(until=5)
    assert world.tally.requests[USER]["dynamodb:BatchWriteItem"] == 1


def test_marks_gather_for_the_cycle_the_server_timed_where_the_profile_has_it(
    profile: LatencyProfile,
) -> None:
    """A run's profile holds the marks' whole commit cycle (`batches.MARKS_COMMIT`): marks
    arriving during a 100 ms cycle share the next write, though the request alone is 1 ms.
    Without the cycle (a profile of AWS) the request's latency is the window."""
    from semichat.aws.batches import MARKS_COMMIT
    from semichat.aws.latency import Distribution
    from semichat.model.chat import GroupCommit
    from semichat.model.world import World

    ops = dict(profile.operations)
    ops["dynamodb:BatchWriteItem"] = Distribution.from_percentiles({"50": 1.0, "99": 1.0})
    writes = {}
    for cycle_ms in (None, 100.0):
        if cycle_ms is not None:
            ops[MARKS_COMMIT] = Distribution.from_percentiles({"50": cycle_ms, "99": cycle_ms})
        world = World(Activity(users=3), Setup(cpu_ms_per_request=0.0), LatencyProfile("test", ops))
        marks = GroupCommit(world, cycle=MARKS_COMMIT)

        def send(at: float, w: World = world, m: GroupCommit = marks) -> Generator[Any, Any, None]:
            yield w.env.timeout(at)
            yield m.submit()

        for at in (0.0, 0.02, 0.04):
            world.env.process(send(at))
        world.env.run(until=5)
        writes[cycle_ms] = world.tally.requests[USER]["dynamodb:BatchWriteItem"]
    assert writes == {None: 3, 100.0: 2}


def test_what_the_profile_holds_already_is_taken_off_each_draw_without_clipping(
    profile: LatencyProfile,
) -> None:
    """The server timed each call up to its continuation, so the profile holds the loop's
    wait: taken off in proportion to the draw (the mean kept, no fast draw cut to nothing),
    or, with a first pass's held times, the one at the draw's own quantile."""
    from semichat.model.world import World

    world = World(Activity(users=3), Setup(), profile)
    mean_s = profile.operations["dynamodb:Query"].mean() / 1000
    half = world.backend_s("dynamodb:Query", 0.002, held_s=mean_s / 2, u=0.1)
    assert half == pytest.approx(0.001)  # not max(0, 2 ms - the mean wait)
    world.held = {"dynamodb:Query": [0.001, 0.002, 0.004, 0.008]}
    assert world.backend_s("dynamodb:Query", 0.010, held_s=0.0, u=0.6) == pytest.approx(0.006)
    assert world.backend_s("dynamodb:Query", 0.001, held_s=0.0, u=0.9) == 0.0


def _rows(**counts: tuple[float, float | None]) -> list[Row]:
    return [
        Row(name.replace("__", ":"), model, measured) for name, (model, measured) in counts.items()
    ]


def test_agreement_names_the_request_count_furthest_from_its_measure() -> None:
    rows = _rows(
        sends=(200.0, 100.0),  # not a request count: never the worst
        sqs__SendMessage=(104.0, 100.0),
        dynamodb__GetItem=(90.0, 100.0),
    )
    rows += [Row("user_view p50 (ms)", 36.0, 30.0), Row("user_view p99 (ms)", 100.0, 160.0)]
    found = agreement(rows)
    assert (found.worst_op, found.worst_ratio) == ("GetItem", pytest.approx(0.9))
    assert found.view_p50 == pytest.approx(1.2)
    assert found.misses() == ["GetItem", "view p99"]


def test_agreement_of_an_idle_run_judges_counts_only_and_5_percent_is_within() -> None:
    rows = _rows(sqs__CreateQueue=(20.0, 20.0), sqs__ReceiveMessage_empty=(21.0, 20.0))
    rows += [Row("user_view p50 (ms)", float("nan"), None)]
    found = agreement(rows)
    assert (found.view_p50, found.view_p99) == (None, None)
    assert found.misses() == []


def test_agreement_counts_requests_the_run_never_made_as_a_miss() -> None:
    found = agreement(_rows(sqs__SendMessage=(10.0, 10.0), dynamodb__DeleteItem=(3.0, 0.0)))
    assert (found.worst_op, found.worst_ratio) == ("DeleteItem", math.inf)
    assert found.misses() == ["DeleteItem"]
