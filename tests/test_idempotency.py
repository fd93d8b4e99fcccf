"""Idempotent sends: concurrent retries store and announce a message once, and a retry
finishes the fan-out of a message whose first attempt was stored but not announced."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from semichat.server.appkeys import ROUTER
from semichat.settings import Settings

from .test_api import history, new_conversation, send


def queued(sqs: Any, settings: Settings, user: str) -> int:
    urls = sqs.list_queues(QueueNamePrefix=f"{settings.queue_prefix}{user}").get("QueueUrls", [])
    if not urls:
        return 0
    [url] = urls
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


async def test_concurrent_retries_store_and_enqueue_once(
    client: TestClient[Any, Any], sqs: Any, settings: Settings
) -> None:
    conversation = await new_conversation(client, "alice", "bob")
    responses = await asyncio.gather(
        *(send(client, "alice", conversation, "exactly once", "retry-key") for _ in range(20))
    )
    statuses = Counter(r.status for r in responses)
    assert statuses == {201: 1, 200: 19}
    bodies = [await r.json() for r in responses]
    assert len({b["messageId"] for b in bodies}) == 1
    assert sum(b["duplicate"] for b in bodies) == 19
    messages = (await (await history(client, "bob", conversation)).json())["messages"]
    assert len(messages) == 1
    assert queued(sqs, settings, "bob") == 1
    assert queued(sqs, settings, "alice") == 1


class FlakyPublish:
    """Fails the first `failures` publishes, like an SQS outage mid-send."""

    def __init__(self, publish: Any, failures: int) -> None:
        self._publish = publish
        self.failures = failures

    async def __call__(self, recipients: Any, notification: Any) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("SQS unreachable")
        await self._publish(recipients, notification)


async def test_failed_fan_out_is_finished_by_one_of_many_retries(
    client: TestClient[Any, Any], sqs: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation = await new_conversation(client, "alice", "bob")
    router = client.app[ROUTER]
    monkeypatch.setattr(router, "publish", FlakyPublish(router.publish, failures=1))

    first = await send(client, "alice", conversation, "stored, not announced", "k")
    assert first.status == 503
    assert "same idempotency key" in (await first.json())["error"]
    assert len((await (await history(client, "bob", conversation)).json())["messages"]) == 1
    assert queued(sqs, settings, "bob") == 0

    retries = await asyncio.gather(
        *(send(client, "alice", conversation, "stored, not announced", "k") for _ in range(10))
    )
    assert {r.status for r in retries} == {200}
    assert len({(await r.json())["messageId"] for r in retries}) == 1
    assert queued(sqs, settings, "bob") == 1

    # Announced now: later retries announce nothing more.
    assert (await send(client, "alice", conversation, "stored, not announced", "k")).status == 200
    assert queued(sqs, settings, "bob") == 1
    assert len((await (await history(client, "bob", conversation)).json())["messages"]) == 1
