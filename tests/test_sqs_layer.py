"""The SQS layer's patience with a queue a process cannot start without."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botocore.exceptions import ClientError

from semichat.server.delivery.sqs import SqsQueues
from semichat.server.metrics import SqsCounters


class FlakySqs:
    """CreateQueue answers `codes` in turn, then succeeds."""

    def __init__(self, codes: list[str]) -> None:
        self.codes = codes
        self.calls = 0

    async def create_queue(self, **_: Any) -> dict[str, str]:
        self.calls += 1
        if self.codes:
            code = self.codes.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": "x"}}, "CreateQueue")
        return {"QueueUrl": "http://q/1"}


async def test_throttled_and_unavailable_creates_are_retried() -> None:
    sqs = FlakySqs(["RequestThrottled", "ServiceUnavailable"])
    url = await SqsQueues(sqs, SqsCounters()).create_queue_patiently("q", {}, attempts=3)
    assert url == "http://q/1" and sqs.calls == 3


async def test_other_errors_and_the_last_attempt_are_raised() -> None:
    denied = FlakySqs(["AccessDenied"])
    with pytest.raises(ClientError):
        await SqsQueues(denied, SqsCounters()).create_queue_patiently("q", {}, attempts=3)
    assert denied.calls == 1
    throttled = FlakySqs(["RequestThrottled"] * 5)
    with pytest.raises(ClientError):
        await SqsQueues(throttled, SqsCounters()).create_queue_patiently("q", {}, attempts=2)
    assert throttled.calls == 2


class HeldSqs:
    """DeleteMessage and ReceiveMessage wait until the test lets them answer."""

    def __init__(self) -> None:
        self.answer = asyncio.Event()

    async def delete_message(self, **_: Any) -> dict[str, Any]:
        await self.answer.wait()
        return {}

    async def receive_message(self, **_: Any) -> dict[str, Any]:
        await self.answer.wait()
        return {"Messages": [{"MessageId": "m", "ReceiptHandle": "r", "Body": "{}"}]}


async def test_a_request_is_counted_once_answered_not_when_sent() -> None:
    """A reader who sees `delete: 1` may take the delete as done: it must be."""
    sqs, counters = HeldSqs(), SqsCounters()
    queues = SqsQueues(sqs, counters)
    delete = asyncio.create_task(queues.delete("http://q/1", "r"))
    receive = asyncio.create_task(queues.receive("http://q/1", wait_seconds=20))
    await asyncio.sleep(0)  # both requests are in flight
    assert (counters.delete, counters.receive, counters.messages_deleted) == (0, 0, 0)
    assert counters.active_polls == 1
    sqs.answer.set()
    await asyncio.gather(delete, receive)
    assert (counters.delete, counters.receive, counters.messages_deleted) == (1, 1, 1)
    assert (counters.active_polls, counters.messages_received) == (0, 1)


async def test_an_abandoned_request_is_still_counted() -> None:
    """A cancelled long poll was sent and is billed: it counts when it ends."""
    counters = SqsCounters()
    receive = asyncio.create_task(SqsQueues(HeldSqs(), counters).receive("http://q/1", 20))
    await asyncio.sleep(0)
    receive.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receive
    assert (counters.receive, counters.active_polls) == (1, 0)
