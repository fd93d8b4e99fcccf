"""The SQS layer: the few queue operations semichat uses, each counted."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any

from botocore.exceptions import ClientError

from semichat.server.metrics import SqsCounters

MISSING_QUEUE_CODES = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
# Worth waiting out: SQS's throttling and passing 5xx answers.
TRANSIENT_CODES = {
    "RequestThrottled",
    "ThrottlingException",
    "Throttling",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
}


def is_missing_queue(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    return exc.response.get("Error", {}).get("Code") in MISSING_QUEUE_CODES


class SqsQueues:
    def __init__(self, sqs: Any, counters: SqsCounters) -> None:
        self._sqs = sqs
        self.counters = counters

    @asynccontextmanager
    async def _counted(self, name: str):  # type: ignore[no-untyped-def]
        """Count the request once it is answered (or failed, or abandoned), never before: a
        reader who sees `delete: 3` may take the third delete as done."""
        try:
            yield
        except ClientError:
            self.counters.errors += 1
            raise
        finally:
            setattr(self.counters, name, getattr(self.counters, name) + 1)

    async def create_queue(self, name: str, attributes: dict[str, str]) -> str:
        """CreateQueue is idempotent for one name and the same attributes: racing creators
        of one user's queue all get the same URL."""
        async with self._counted("create_queue"):
            resp = await self._sqs.create_queue(QueueName=name, Attributes=attributes)
        return str(resp["QueueUrl"])

    async def create_queue_patiently(
        self, name: str, attributes: dict[str, str], attempts: int = 6
    ) -> str:
        """CreateQueue for a queue a process cannot run without (a shard, an instance's own):
        throttling and 5xx answers are retried after 0.2, 0.4, ... 3.2 s instead of failing
        the process's start; anything else, and the last failure, is raised."""
        for attempt in range(attempts):
            try:
                return await self.create_queue(name, attributes)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code not in TRANSIENT_CODES or attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    async def get_queue_url(self, name: str) -> str:
        """The URL of an existing queue; raises a missing-queue ClientError otherwise."""
        async with self._counted("get_queue_url"):
            resp = await self._sqs.get_queue_url(QueueName=name)
        return str(resp["QueueUrl"])

    async def delete_queue(self, queue_url: str) -> None:
        async with self._counted("delete_queue"):
            await self._sqs.delete_queue(QueueUrl=queue_url)

    async def send(self, queue_url: str, body: str, **extra: Any) -> None:
        async with self._counted("send"):
            await self._sqs.send_message(QueueUrl=queue_url, MessageBody=body, **extra)

    async def receive(
        self, queue_url: str, wait_seconds: int, visibility_timeout: int | None = None
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "QueueUrl": queue_url,
            "WaitTimeSeconds": wait_seconds,
            "MaxNumberOfMessages": 10,
            "AttributeNames": ["All"],
        }
        if visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = visibility_timeout
        self.counters.active_polls += 1
        try:
            async with self._counted("receive"):
                resp = await self._sqs.receive_message(**kwargs)
        finally:
            self.counters.active_polls -= 1
        messages = list(resp.get("Messages", []))
        if messages:
            self.counters.messages_received += len(messages)
        else:
            self.counters.empty_receive += 1
        return messages

    async def delete(self, queue_url: str, receipt_handle: str) -> None:
        async with self._counted("delete"):
            await self._sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt_handle)
        self.counters.messages_deleted += 1

    async def delete_batch(self, queue_url: str, receipt_handles: list[str]) -> None:
        """Delete up to 10 received messages in one request (one billed request per batch)."""
        for start in range(0, len(receipt_handles), 10):
            chunk = receipt_handles[start : start + 10]
            async with self._counted("delete"):
                resp = await self._sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)],
                )
            failed = len(resp.get("Failed", []))
            self.counters.errors += failed
            self.counters.messages_deleted += len(chunk) - failed

    async def release(self, queue_url: str, receipt_handle: str) -> None:
        """Make a received message visible again now instead of after its visibility timeout."""
        async with self._counted("change_visibility"):
            await self._sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=0
            )
        self.counters.messages_released += 1
