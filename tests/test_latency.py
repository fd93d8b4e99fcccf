"""Latency profiles: parsing and refusals, sampling, and their replay beneath botocore's retries;
`semichat calibrate` writing a profile that replays."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st

from semichat.aws.clients import open_clients
from semichat.aws.latency import (
    FORMAT,
    WAKE,
    Distribution,
    _Replay,
    load_profile,
    parse_profile,
)
from semichat.server.faults.nemesis import FaultSpec, FaultSpecError
from semichat.settings import Settings


def _document(operations: dict[str, Any], fmt: str = FORMAT) -> dict[str, Any]:
    return {"format": fmt, "source": "test", "operations": operations}


def _constant(ms: float) -> dict[str, Any]:
    return {"percentiles_ms": {"0": ms, "50": ms}}


def test_the_built_in_aws_profile_puts_sqs_calls_at_about_20_ms_on_average() -> None:
    aws = load_profile("aws")
    send = aws.operations["sqs:SendMessage"]
    # AWS's "averages 20 ms" from EC2 in-region (docs/fidelity.md, Latency).
    assert 18 <= send.mean() <= 22 and send.quantile(50) == 18
    assert aws.operations["dynamodb:GetItem"].quantile(90) < 10  # single-digit milliseconds
    assert WAKE in aws.operations


def test_a_spec_names_a_latency_profile_and_describes_it_back() -> None:
    spec = FaultSpec.parse("sqs,latency=aws,seed=3")
    assert spec.latency == "aws" and spec.server_side
    assert "latency=aws" in spec.describe()
    assert FaultSpec.parse(spec.describe()) == spec


BAD_PROFILES: list[tuple[str, str | dict[str, Any] | None, str]] = [
    ("missing", None, "no such file"),
    ("not JSON", "{not json", "not JSON"),
    ("wrong format", _document({"sqs:SendMessage": _constant(1)}, "other/1"), "format 'other/1'"),
    (
        "unknown operation",
        _document({"sqs:SendMail": _constant(1)}),
        "unknown operation 'sqs:SendMail'",
    ),
    (
        "negative latency",
        _document({"dynamodb:PutItem": {"percentiles_ms": {"50": 3, "99": -1}}}),
        "negative latency",
    ),
    ("no p50", _document({"sqs:SendMessage": {"percentiles_ms": {"90": 3}}}), '"50" at least'),
    (
        "decreasing",
        _document({"sqs:SendMessage": {"percentiles_ms": {"50": 9, "90": 3}}}),
        "is below p50",
    ),
]


def _write(tmp_path: Path, content: str | dict[str, Any] | None) -> Path:
    path = tmp_path / "profile.json"
    if content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.mark.parametrize(
    ("case", "content", "named"), BAD_PROFILES, ids=[c[0] for c in BAD_PROFILES]
)
def test_a_bad_profile_is_refused_naming_its_fault(
    tmp_path: Path, case: str, content: str | dict[str, Any] | None, named: str
) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(FaultSpecError) as info:
        FaultSpec.parse(f"latency={path}")
    assert named in str(info.value) and f"latency={path}" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case", [c[0] for c in BAD_PROFILES[:5]])
def test_serve_and_simulate_refuse_a_bad_profile_at_start_in_one_line(
    tmp_path: Path, case: str
) -> None:
    _, content, named = next(c for c in BAD_PROFILES if c[0] == case)
    path = _write(tmp_path, content)
    for command in ("serve", "simulate"):
        proc = subprocess.run(
            [sys.executable, "-m", "semichat", command, "--faults", f"latency={path}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode != 0, proc.stdout
        assert proc.stderr.count("\n") == 1 and named in proc.stderr, proc.stderr
        assert not proc.stdout  # nothing started, nothing said


percentile_maps = st.dictionaries(
    st.sampled_from(["0", "10", "50", "90", "99", "99.9", "100"]),
    st.floats(min_value=0, max_value=1e4, allow_nan=False),
    min_size=1,
).map(lambda m: {"50": 1.0, **m})


@given(percentile_maps, st.integers(min_value=0, max_value=2**32))
def test_samples_stay_within_the_given_values_and_the_quantiles_pass_through_them(
    raw: dict[str, float], seed: int
) -> None:
    values = sorted(raw.values())
    ordered = dict(zip(sorted(raw, key=float), values, strict=True))  # non-decreasing
    dist = Distribution.from_percentiles(ordered)
    rng = random.Random(seed)
    for _ in range(50):
        assert values[0] <= dist.sample(rng) <= values[-1]
    for q, ms in ordered.items():
        assert dist.quantile(float(q)) == pytest.approx(ms)
    qs = [i / 2 for i in range(201)]
    assert all(
        a <= b + 1e-9
        for a, b in zip(map(dist.quantile, qs), map(dist.quantile, qs[1:]), strict=False)
    )


def test_samples_follow_the_percentiles() -> None:
    dist = Distribution.from_percentiles({"50": 10, "90": 20, "99": 40})
    assert dist.floor == 10  # no "0": the lowest value
    rng = random.Random(7)
    samples = sorted(dist.sample(rng) for _ in range(20_000))
    assert samples[10_000] == pytest.approx(10, abs=0.5)
    assert samples[18_000] == pytest.approx(20, abs=1)
    assert Distribution.from_percentiles({"0": 2, "50": 10}).quantile(25) == pytest.approx(6)


class _Recorded:
    """A sleep and a clock for the replay: a sleep is recorded and moves the clock."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def _call(
    replay: _Replay,
    recorded: _Recorded,
    operation: str,
    response: dict[str, Any],
    wait: int | None = None,
) -> list[float]:
    """One attempt through the replay's handlers, as botocore emits them: the sleeps it made."""
    before = len(recorded.sleeps)
    context: dict[str, Any] = {}
    if wait is not None:
        replay.note_long_poll(params={"WaitTimeSeconds": wait}, context=context)
    await replay.start(request=type("R", (), {"context": context})(), operation_name=operation)
    await replay.finish(
        context=context, parsed_response=response, event_name=f"response-received.sqs.{operation}"
    )
    return recorded.sleeps[before:]


async def test_a_call_is_held_half_way_out_and_the_rest_on_its_answer() -> None:
    recorded = _Recorded()
    delayed: list[str] = []
    profile = parse_profile(
        _document({"sqs:SendMessage": _constant(40), "sqs:DeleteMessage": _constant(1.5)}), "t"
    )
    replay = _Replay(
        "sqs", profile, random.Random(1), delayed.append, recorded.sleep, recorded.clock
    )
    assert await _call(replay, recorded, "SendMessage", {}) == [
        pytest.approx(0.020),
        pytest.approx(0.020),
    ]
    # Under a millisecond left: not worth an event-loop turn (a 0.75 ms hold), the rest slept.
    assert await _call(replay, recorded, "DeleteMessage", {}) == [pytest.approx(0.0015)]
    assert await _call(replay, recorded, "GetQueueUrl", {}) == []  # not in the profile
    assert delayed == ["sqs:SendMessage", "sqs:DeleteMessage"]  # once per attempt


async def test_a_long_poll_pays_the_wake_up_only_when_it_returns_messages() -> None:
    recorded = _Recorded()
    messages = {"Messages": [{"Body": "x"}]}
    wake_only = parse_profile(_document({WAKE: _constant(40)}), "test")
    replay = _Replay("sqs", wake_only, random.Random(1), None, recorded.sleep, recorded.clock)
    # The wake-up, on top of the real wait; an empty poll keeps its real wait, unstretched.
    assert await _call(replay, recorded, "ReceiveMessage", messages, wait=20) == [
        pytest.approx(0.040)
    ]
    assert await _call(replay, recorded, "ReceiveMessage", {}, wait=20) == []

    both = parse_profile(
        _document({"sqs:ReceiveMessage": _constant(300), WAKE: _constant(40)}), "test"
    )
    replay = _Replay("sqs", both, random.Random(1), None, recorded.sleep, recorded.clock)
    # Messages that were waiting already: no sooner than a plain ReceiveMessage.
    assert sum(await _call(replay, recorded, "ReceiveMessage", messages, wait=20)) == (
        pytest.approx(0.300)
    )
    # A short poll: its total, half on the way out.
    assert sum(await _call(replay, recorded, "ReceiveMessage", {}, wait=0)) == pytest.approx(
        0.300, abs=0.01
    )


async def test_every_attempt_beneath_botocore_takes_at_least_the_profiles_floor() -> None:
    """A fake SQS answers two 500s, then the queue's URL: botocore (standard mode) retries twice,
    and the profile's 150 ms is paid by each attempt, before botocore decides to retry."""
    arrivals: list[float] = []

    async def sqs(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        if len(arrivals) <= 2:
            body = {"__type": "com.amazonaws.sqs#InternalError", "message": "try again"}
            return web.json_response(body, status=500, content_type="application/x-amz-json-1.0")
        return web.json_response(
            {"QueueUrl": "http://q/1"}, content_type="application/x-amz-json-1.0"
        )

    app = web.Application()
    app.router.add_post("/", sqs)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    profile = parse_profile(_document({"sqs:GetQueueUrl": _constant(150)}), "test")
    settings = Settings().with_overrides(endpoint_url=str(server.make_url("/")))
    try:
        async with open_clients(settings, latency=profile, seed=1) as clients:
            started = time.monotonic()
            resp = await clients.sqs.get_queue_url(QueueName="q")
            elapsed = time.monotonic() - started
    finally:
        await server.close()
    assert resp["QueueUrl"] == "http://q/1"
    assert resp["ResponseMetadata"]["RetryAttempts"] == 2 and len(arrivals) == 3
    assert elapsed >= 3 * 0.150
    # Each retry left only after its failed attempt had taken the profile's time.
    assert all(b - a >= 0.150 for a, b in itertools.pairwise(arrivals))


@pytest.mark.backend
def test_calibrate_writes_a_profile_that_replays(tmp_path: Path) -> None:
    out = tmp_path / "emb.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "semichat",
            "calibrate",
            "--output",
            str(out),
            "--count",
            "3",
            "--max-seconds",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    profile = load_profile(str(out))
    for key in (
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        WAKE,
        "sqs:DeleteMessage",
        "sqs:DeleteMessageBatch",
        "sqs:ChangeMessageVisibility",
        "sqs:CreateQueue",
        "sqs:GetQueueUrl",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
        "dynamodb:TransactWriteItems",
        "dynamodb:BatchWriteItem",
    ):
        assert profile.operations[key].quantile(50) >= 0, key
    measured = json.loads(out.read_text())["measured"]
    assert measured["backend"] == "embedded" and measured["count"] == 3
    assert FaultSpec.parse(f"latency={out}").latency == str(out)


@pytest.mark.backend
def test_calibrating_through_a_replay_gives_the_profile_back(tmp_path: Path) -> None:
    """The layer alone, on the embedded backend: every SendMessage measured through a replay of
    a 30 ms profile takes at least 30 ms."""
    replayed = _write(tmp_path, _document({"sqs:SendMessage": _constant(30)}))
    out = tmp_path / "measured.json"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "semichat", "calibrate", "--output", str(out)),
            *("--count", "3", "--max-seconds", "10", "--replay", str(replayed)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    measured = load_profile(str(out))
    assert measured.operations["sqs:SendMessage"].floor >= 30
    assert "replaying test" in measured.source
