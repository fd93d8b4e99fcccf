"""The SQS layer's patience with a queue a process cannot start without."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from semichat.server.metrics import SqsCounters
from semichat.server.sqs import SqsQueues


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
