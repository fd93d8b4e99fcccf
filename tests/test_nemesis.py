"""The nemesis: its spec, its seeded decisions, and the SQS faults as AWS raises them."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from botocore.exceptions import ClientError

from semichat.server.errors import RETRY_AFTER_S, backend_refusal
from semichat.server.faults.faulty_sqs import FaultySqsQueues
from semichat.server.faults.nemesis import PRESETS, FaultSpec, FaultSpecError, Nemesis, aws_error
from semichat.server.metrics import SqsCounters


def test_a_spec_names_faults_and_presets_and_later_parts_win() -> None:
    spec = FaultSpec.parse("duplicate=0.05,reorder=0.05,delete_fail=0.02,seed=7")
    assert (spec.duplicate, spec.reorder, spec.delete_fail, spec.seed) == (0.05, 0.05, 0.02, 7)
    sqs = FaultSpec.parse("sqs")
    assert sqs.duplicate > 0 and sqs.reorder > 0 and sqs.send_error > 0 and not sqs.stream_cut
    assert FaultSpec.parse("sqs,duplicate=0.5").duplicate == 0.5
    everything = FaultSpec.parse("all")
    assert everything.stream_cut and everything.lost_write and everything.queue_delete
    assert not everything.crash and not everything.queue_quota
    assert FaultSpec.parse(everything.describe()) == everything
    assert set(PRESETS) == {"sqs", "platform", "all", "aws"}
    aws = FaultSpec.parse("aws")
    # AWS's published limits at their published figures (docs/faults.md).
    assert (aws.queue_deleted_recently, aws.inflight_limit, aws.fifo_tps, aws.message_size) == (
        60,
        120_000,
        300,
        1_048_576,
    )
    # ... and AWS's latency: the built-in profile (docs/fidelity.md gives each figure's source).
    assert aws.latency == "aws"
    assert FaultSpec.parse(aws.describe()) == aws


@pytest.mark.parametrize("text", ["", "none", "  "])
def test_no_spec_is_no_fault(text: str) -> None:
    spec = FaultSpec.parse(text)
    assert spec == FaultSpec() and not spec.active and not spec.server_side
    nemesis = Nemesis(spec)
    assert not any(nemesis.strikes(kind) for kind in ("duplicate", "reorder") for _ in range(100))
    assert nemesis.stream_cut_after() is None
    assert nemesis.snapshot() == {"spec": "", "injected": {}}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("dupe=0.1", "'dupe'"),
        ("duplicate=1.5", "'duplicate=1.5'"),
        ("reorder=often", "'reorder=often'"),
        ("sqs,cloud", "'cloud'"),
        ("queue_quota=2.5", "'queue_quota=2.5'"),
        ("stream_cut=-3", "'stream_cut=-3'"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_bad_part(text: str, named: str) -> None:
    with pytest.raises(FaultSpecError) as info:
        FaultSpec.parse(text)
    assert named in str(info.value) and "\n" not in str(info.value)


def test_serve_refuses_a_bad_spec_at_start_in_one_line() -> None:
    for command in ("serve", "simulate"):
        proc = subprocess.run(
            [sys.executable, "-m", "semichat", command, "--faults", "duplicate=0.1,sqs,lag=2"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode != 0
        assert proc.stderr.count("\n") == 1 and "'lag=2'" in proc.stderr, proc.stderr


def test_decisions_repeat_with_the_seed_and_strike_at_the_rate() -> None:
    runs = [Nemesis.from_text("duplicate=0.05,seed=7") for _ in range(2)]
    decisions = [[n.strikes("duplicate") for _ in range(20_000)] for n in runs]
    assert decisions[0] == decisions[1]
    hits = sum(decisions[0])
    assert runs[0].snapshot()["injected"] == {"duplicate": hits}
    # 20,000 trials at 5 %: mean 1,000, standard deviation about 31.
    assert 850 < hits < 1150


class FakeSqs:
    """Records the calls the SQS layer makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        async def call(**kwargs: Any) -> dict[str, Any]:
            self.calls.append((name, kwargs))
            if name == "create_queue":
                return {"QueueUrl": "http://sqs/q/" + kwargs["QueueName"]}
            if name == "receive_message":
                return {"Messages": [{"Body": "{}", "ReceiptHandle": "r"}]}
            return {}

        return call

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def _queues(spec: str) -> tuple[FaultySqsQueues, FakeSqs]:
    sqs = FakeSqs()
    return FaultySqsQueues(sqs, SqsCounters(), Nemesis.from_text(spec)), sqs


def _code(exc: BaseException) -> str:
    assert isinstance(exc, ClientError)
    return str(exc.response["Error"]["Code"])


@pytest.mark.parametrize(
    ("code", "operation", "cause"),
    [
        ("ServiceUnavailable", "ReceiveMessage", "unavailable"),
        ("InternalError", "SendMessage", "unavailable"),
        ("ThrottlingException", "DeleteMessage", "throttled"),
        ("RequestThrottled", "CreateQueue", "throttled"),
        ("OverLimit", "CreateQueue", "quota"),
        ("OverLimit", "ReceiveMessage", "quota"),
        ("AWS.SimpleQueueService.QueueDeletedRecently", "CreateQueue", "recently_deleted"),
        ("ProvisionedThroughputExceededException", "TransactWriteItems", "throttled"),
        ("ThrottlingException", "GetItem", "throttled"),
        ("RequestLimitExceeded", "PutItem", "throttled"),
        ("InternalServerError", "Query", "unavailable"),
        ("TransactionCanceledException", "TransactWriteItems", "conflict"),
        ("TransactionConflictException", "UpdateItem", "conflict"),
        ("TransactionInProgressException", "TransactWriteItems", "conflict"),
    ],
)
def test_every_refusal_of_either_service_is_a_503_cause(
    code: str, operation: str, cause: str
) -> None:
    refusal = backend_refusal(aws_error(code, 400, operation))
    assert refusal is not None and refusal[0] == cause  # a 503 for clients, never a 500
    assert RETRY_AFTER_S[cause] >= 1
    # The message names the service that refused: the operation tells which.
    service = "SQS" if operation.endswith(("Message", "Queue")) else "DynamoDB"
    assert refusal[1].startswith(f"{service} ")


def test_a_bug_of_ours_is_no_refusal() -> None:
    assert backend_refusal(aws_error("ValidationException", 400, "PutItem")) is None
    assert backend_refusal(aws_error("InvalidParameterValue", 400, "SendMessage")) is None


async def test_duplicate_keeps_the_message_and_reorder_delays_it() -> None:
    queues, sqs = _queues("duplicate=0.5,reorder=0.5,seed=3")
    for _ in range(200):
        await queues.delete("u", "r")
        await queues.send("u", "b")
    injected = queues.nemesis.snapshot()["injected"]
    assert 70 < injected["duplicate"] < 130 and 70 < injected["reorder"] < 130
    # A "duplicated" delete answers success but makes the message visible again 1 to 3 s later.
    hidden = [kw["VisibilityTimeout"] for n, kw in sqs.calls if n == "change_message_visibility"]
    assert len(hidden) == injected["duplicate"] and set(hidden) <= {1, 2, 3}
    assert sqs.names().count("delete_message") == 200 - injected["duplicate"]
    assert queues.counters.messages_deleted == 200
    delays = [
        kw["DelaySeconds"] for n, kw in sqs.calls if n == "send_message" and kw.get("DelaySeconds")
    ]
    assert len(delays) == injected["reorder"] and set(delays) <= {2, 3, 4, 5}


async def test_without_faults_the_app_gets_the_plain_sqs_layer() -> None:
    from semichat.server.api.app import _queues as app_queues
    from semichat.server.delivery.sqs import SqsQueues

    plain = app_queues(FakeSqs(), SqsCounters(), Nemesis.from_text(""))
    assert type(plain) is SqsQueues
    crash_only = app_queues(FakeSqs(), SqsCounters(), Nemesis.from_text("crash=10"))
    assert type(crash_only) is SqsQueues
    assert isinstance(
        app_queues(FakeSqs(), SqsCounters(), Nemesis.from_text("sqs")), FaultySqsQueues
    )
