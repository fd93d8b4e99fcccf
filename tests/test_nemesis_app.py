"""The nemesis's faults through the real app and a real backend, and through one short run."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from semichat.server.api.app import create_app
from semichat.server.api.appkeys import CLIENTS, NEMESIS
from semichat.server.delivery.routing.naming import user_queue_name
from semichat.settings import Settings

from .sse_helpers import data, next_events
from .test_api import as_user, new_conversation, send
from .test_stream import STREAM_TIMEOUT, open_stream
from .waiting import wait_for


async def _app(aiohttp_client: Any, settings: Settings, faults: str) -> Any:
    app = create_app(dataclasses.replace(settings, faults=faults))
    return await aiohttp_client(app, server_kwargs={"handler_cancellation": True})


async def test_a_user_over_the_queue_quota_gets_a_json_503_naming_it(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await _app(aiohttp_client, settings, "queue_quota=2")
    conversation = await new_conversation(client, "alice", "bob")
    streams = {user: await open_stream(client, user) for user in ("alice", "bob")}
    refused = await client.get("/api/chat/stream", headers=as_user("carol"), timeout=STREAM_TIMEOUT)
    assert refused.status == 503
    assert "quota" in (await refused.json())["error"]
    # The first two chat on.
    sent = await (await send(client, "alice", conversation, "still here", "k1")).json()
    for stream in streams.values():
        [event] = await asyncio.wait_for(next_events(stream, 1), 10)
        assert data(event)["messageId"] == sent["messageId"]
        stream.close()
    metrics = await (await client.get("/metrics")).json()
    assert metrics["faults"] == {"spec": "queue_quota=2", "injected": {"queue_quota": 1}}
    assert metrics["refusals"] == {"quota": 1}


async def test_a_failed_fan_out_answers_503_and_its_retry_completes(
    aiohttp_client: Any, settings: Settings
) -> None:
    # botocore retries each failed SendMessage (3 attempts in all): at 0.8 a recipient's send
    # still fails half of the time, so a fan-out to three mostly does.
    client = await _app(aiohttp_client, settings, "send_error=0.8,seed=3")
    conversation = await new_conversation(client, "alice", "bob", "carol")
    statuses = []
    for _attempt in range(20):
        resp = await send(client, "alice", conversation, "hello", "k1")
        statuses.append(resp.status)
        if resp.status in (200, 201):
            break
        assert resp.status == 503 and "retry" in (await resp.json())["error"]
    assert 503 in statuses and statuses[-1] in (200, 201), statuses
    metrics = await (await client.get("/metrics")).json()
    assert metrics["faults"]["injected"]["send_error"] >= statuses.count(503)
    # Most injected errors never reached the app: botocore retried them.
    retried = sum(n for k, n in metrics["botocore"]["retries"].items() if "SendMessage" in k)
    assert retried > sum(n for k, n in metrics["botocore"]["errors"].items() if "SendMessage" in k)


async def test_reorder_spares_fifo_queues_whose_order_aws_keeps(
    aiohttp_client: Any, settings: Settings
) -> None:
    # A FIFO queue refuses a message's own DelaySeconds (InvalidParameterValue): held back there,
    # every fan-out failed with a 503.
    fifo = dataclasses.replace(settings, routing="fifo")
    client = await _app(aiohttp_client, fifo, "reorder=1")
    conversation = await new_conversation(client, "alice", "bob")
    stream = await open_stream(client, "bob")
    resp = await send(client, "alice", conversation, "in order", "k1")
    assert resp.status == 201, await resp.text()
    [event] = await asyncio.wait_for(next_events(stream, 1), 10)
    assert data(event)["messageId"] == (await resp.json())["messageId"]
    stream.close()
    metrics = await (await client.get("/metrics")).json()
    assert metrics["faults"]["injected"] == {} and metrics["refusals"] == {}


async def test_without_faults_nothing_is_injected(client: Any) -> None:
    conversation = await new_conversation(client, "alice", "bob")
    stream = await open_stream(client, "bob")
    await send(client, "alice", conversation, "hi", "k1")
    await asyncio.wait_for(next_events(stream, 1), 10)
    stream.close()
    metrics = await (await client.get("/metrics")).json()
    assert metrics["faults"] == {"spec": "", "injected": {}}
    assert metrics["refusals"] == {}


def _set(app: Any, **rates: float) -> None:
    """Change the nemesis's rates mid-test: a burst begins or ends (the wire reads them at
    every attempt)."""
    nemesis = app[NEMESIS]
    nemesis.spec = dataclasses.replace(nemesis.spec, **rates)


async def _app_with_wire(aiohttp_client: Any, settings: Settings, faults: str) -> Any:
    # Two attempts instead of the ten DynamoDB's policy ships with: its 25 s of back-off would
    # only make the burst longer to outlast, not change what the app sees once it has.
    app = create_app(dataclasses.replace(settings, faults=faults, dynamodb_max_attempts=2))
    client = await aiohttp_client(app, server_kwargs={"handler_cancellation": True})
    return app, client


async def test_a_dynamodb_throttling_burst_during_a_send_answers_503_and_its_retry_completes(
    aiohttp_client: Any, settings: Settings
) -> None:
    app, client = await _app_with_wire(aiohttp_client, settings, "dynamodb_throttle=1")
    _set(app, dynamodb_throttle=0)
    conversation = await new_conversation(client, "alice", "bob")
    stream = await open_stream(client, "bob")
    # The conversation's members are known now: the burst meets the send's transaction.
    await send(client, "alice", conversation, "before", "k0")
    [before] = await asyncio.wait_for(next_events(stream, 1), 10)
    _set(app, dynamodb_throttle=1)
    refused = await send(client, "alice", conversation, "during", "k1")
    assert refused.status == 503 and refused.headers["Retry-After"] == "1"
    assert "DynamoDB throttled TransactWriteItems" in (await refused.json())["error"]
    _set(app, dynamodb_throttle=0)
    retried = await send(client, "alice", conversation, "during", "k1")
    assert retried.status in (200, 201)
    sent = await retried.json()
    [event] = await asyncio.wait_for(next_events(stream, 1), 10)
    assert data(event)["messageId"] == sent["messageId"] != data(before)["messageId"]
    stream.close()
    metrics = await (await client.get("/metrics")).json()
    assert metrics["refusals"] == {"throttled": 1}
    botocore = metrics["botocore"]
    key = "dynamodb.TransactWriteItems.ProvisionedThroughputExceededException"
    assert botocore["retries"][key] == 1 and botocore["errors"][key] == 1


async def test_a_cancelled_transaction_answers_503_and_its_retry_completes(
    aiohttp_client: Any, settings: Settings
) -> None:
    app, client = await _app_with_wire(aiohttp_client, settings, "dynamodb_conflict=1")
    _set(app, dynamodb_conflict=0)
    conversation = await new_conversation(client, "alice", "bob")
    stream = await open_stream(client, "bob")
    _set(app, dynamodb_conflict=1)
    refused = await send(client, "alice", conversation, "hi", "k1")
    assert refused.status == 503 and refused.headers["Retry-After"] == "1"
    _set(app, dynamodb_conflict=0)
    sent = await (await send(client, "alice", conversation, "hi", "k1")).json()
    [event] = await asyncio.wait_for(next_events(stream, 1), 10)
    assert data(event)["messageId"] == sent["messageId"]
    stream.close()
    metrics = await (await client.get("/metrics")).json()
    assert metrics["refusals"] == {"conflict": 1}
    # botocore does not retry a cancelled transaction: the app saw the first attempt's answer.
    assert metrics["botocore"]["errors"] == {
        "dynamodb.TransactWriteItems.TransactionCanceledException": 1
    }
    assert not any(k.startswith("dynamodb.") for k in metrics["botocore"]["retries"])


async def test_a_queue_deleted_recently_answers_503_and_the_send_completes_once_it_may_be_created(
    aiohttp_client: Any, settings: Settings
) -> None:
    app, client = await _app_with_wire(aiohttp_client, settings, "queue_deleted_recently=60")
    conversation = await new_conversation(client, "alice", "bob")
    (await open_stream(client, "bob")).close()  # bob's queue exists
    sqs = app[CLIENTS].sqs
    name = user_queue_name(settings.queue_prefix, "bob")
    # Deleted through the app's own client, so that the wire saw the deletion.
    await sqs.delete_queue(QueueUrl=(await sqs.get_queue_url(QueueName=name))["QueueUrl"])
    refused = await send(client, "alice", conversation, "hi", "k1")
    assert refused.status == 503 and refused.headers["Retry-After"] == "1"
    _set(app, queue_deleted_recently=0)  # the minute is over
    sent = await (await send(client, "alice", conversation, "hi", "k1")).json()
    stream = await open_stream(client, "bob")
    [event] = await asyncio.wait_for(next_events(stream, 1), 10)
    assert data(event)["messageId"] == sent["messageId"]
    stream.close()
    metrics = await (await client.get("/metrics")).json()
    assert metrics["faults"]["injected"] == {"queue_deleted_recently": 1}
    assert metrics["refusals"] == {"fanout": 1}


async def test_a_send_whose_fan_out_and_lease_release_both_failed_is_announced_by_its_retry(
    aiohttp_client: Any, settings: Settings
) -> None:
    """The fan-out fails (every SendMessage attempt), then giving its lease back is throttled
    (every attempt): the record keeps a live lease nobody holds. The retry with the same key
    must still announce the message, not answer it done."""
    app, client = await _app_with_wire(aiohttp_client, settings, "send_error=1,dynamodb_throttle=1")
    _set(app, send_error=0, dynamodb_throttle=0)
    conversation = await new_conversation(client, "alice", "bob")
    stream = await open_stream(client, "bob")
    await send(client, "alice", conversation, "warm", "k0")  # members cached: no read first
    [warm] = await asyncio.wait_for(next_events(stream, 1), 10)
    nemesis = app[NEMESIS]
    strikes = nemesis.strikes

    def fan_out_then_release_fail(kind: str) -> bool:
        # SendMessage attempts fail; DynamoDB attempts fail only once a send has failed, so
        # the transaction passes and the release after the failed fan-out does not.
        if kind == "dynamodb_throttle":
            return nemesis.injected["send_error"] > 0 and strikes(kind)
        return strikes(kind)

    nemesis.strikes = fan_out_then_release_fail  # type: ignore[method-assign]
    uniform = nemesis.uniform
    nemesis.uniform = lambda low, high: high  # type: ignore[method-assign]  # none reached
    _set(app, send_error=1, dynamodb_throttle=1)
    refused = await send(client, "alice", conversation, "hi", "k1")
    assert (
        refused.status == 503
        and "retry with the same idempotency key" in (await refused.json())["error"]
    )
    assert nemesis.injected["dynamodb_throttle"] == 2  # the release's two attempts
    # The fan-out's sends run side by side and the first failure answers: let the others
    # finish failing (3 attempts to each of alice and bob) before the faults stop.
    await wait_for(lambda: nemesis.injected["send_error"] == 6, 10, "every send attempt failed")
    nemesis.strikes, nemesis.uniform = strikes, uniform  # type: ignore[method-assign]
    _set(app, send_error=0, dynamodb_throttle=0)
    retried = await send(client, "alice", conversation, "hi", "k1")
    sent = await retried.json()
    assert retried.status in (200, 201) and sent["duplicate"]
    [event] = await asyncio.wait_for(next_events(stream, 1), 10)
    assert data(event)["messageId"] == sent["messageId"] != data(warm)["messageId"]
    stream.close()


FAULTS = (
    "duplicate=0.2,reorder=0.2,delete_fail=0.05,receive_error=0.05,send_error=0.05,"
    "stream_cut=4,lost_write=0.05,seed=11"
)


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    out = tmp_path_factory.mktemp("runs")
    cmd = [sys.executable, "-m", "semichat", "simulate", "--scenario", "chat", "--users", "6",
           "--duration", "12", "--drain", "6", "--send-interval", "1", "--faults", FAULTS,
           "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    return proc, (out / "chat" / "latest").resolve()


def test_with_faults_the_wire_suffers_and_the_user_view_stays_whole(faulty_run: Any) -> None:
    proc, run = faulty_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((run / "results.json").read_text())
    injected = results["faults"]["injected"]
    assert results["faults"]["spec"].startswith("duplicate=0.2,reorder=0.2")
    for kind in ("duplicate", "reorder", "stream_cut"):
        assert injected.get(kind, 0) > 0, injected
    # A duplicated or failed delete is at most one wire duplicate; a failed fan-out's retry
    # announces the message again to each of the conversation's three members.
    resent = injected["duplicate"] + injected.get("delete_fail", 0)
    assert 0 < results["wire"]["duplicated"] <= resent + 3 * injected.get("send_error", 0)
    # Each lost write is a notification the client never read: at most that many wire losses.
    assert results["wire"]["lost"] <= injected.get("lost_write", 0)
    view = results["user_view"]
    assert (view["lost"], view["duplicated"], view["reordered"]) == (0, 0, 0)
    assert view["delivered"] == view["expected"] > 0
    assert results["sends"]["unknown"] == 0
    sqs = results["sqs"]["requests"]
    settled = sqs["messages_deleted"] + sqs["messages_released"] + sqs["unsettled"]
    assert sqs["messages_received"] == settled and sqs["unsettled"] == 0
    params = json.loads((run / "params.json").read_text())
    assert params["faults"] == FAULTS and params["fault_spec"]["duplicate"] == 0.2
