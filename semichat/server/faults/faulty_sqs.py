"""SQS as AWS misbehaves without an error: `SqsQueues` with the nemesis's `duplicate`,
`reorder` and `queue_delete` faults.

Every routing strategy reaches SQS through `SqsQueues`, so the faults apply to any of them.
These three are no error answer that botocore could retry: a delete that "succeeds" but whose
message comes back, a send held back, a queue gone behind the app. They act here, on the app's
calls. AWS's error answers and limits act beneath botocore's retries instead
(`semichat/aws/wire/`). The calls the nemesis itself makes (a delayed re-delivery, a queue
deleted behind the app) are not the app's requests and are not counted as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from semichat.server.delivery.routing.fifo import FIFO_SUFFIX
from semichat.server.delivery.sqs import SqsQueues
from semichat.server.faults.nemesis import Nemesis
from semichat.server.metrics import SqsCounters

log = logging.getLogger("semichat.nemesis")

# How long a fault holds a message back: long enough for later ones to overtake it (a busy
# conversation sends every second or two), short enough to land within a short run.
DUPLICATE_AFTER_S = (1, 3)
REORDER_DELAY_S = (2, 5)


class FaultySqsQueues(SqsQueues):
    def __init__(self, sqs: Any, counters: SqsCounters, nemesis: Nemesis) -> None:
        super().__init__(sqs, counters)
        self.nemesis = nemesis
        self._urls: set[str] = set()
        self._deleter: asyncio.Task[None] | None = None

    def _hold(self, seconds: tuple[int, int]) -> int:
        return round(self.nemesis.uniform(*seconds))

    async def create_queue(self, name: str, attributes: dict[str, str]) -> str:
        url = await super().create_queue(name, attributes)
        self._urls.add(url)
        return url

    async def send(self, queue_url: str, body: str, **extra: Any) -> None:
        # Not on FIFO queues: they keep order within a group, and refuse a message's own
        # DelaySeconds (InvalidParameterValue), which failed the fifo strategy's fan-outs.
        if not queue_url.endswith(FIFO_SUFFIX) and self.nemesis.strikes("reorder"):
            extra = {**extra, "DelaySeconds": self._hold(REORDER_DELAY_S)}
        await super().send(queue_url, body, **extra)

    async def receive(
        self, queue_url: str, wait_seconds: int, visibility_timeout: int | None = None
    ) -> list[dict[str, Any]]:
        self._urls.add(queue_url)
        return await super().receive(queue_url, wait_seconds, visibility_timeout)

    async def delete(self, queue_url: str, receipt_handle: str) -> None:
        if self.nemesis.strikes("duplicate"):
            # The delete "succeeds", but the message comes back: at-least-once delivery.
            self.counters.delete += 1
            self.counters.messages_deleted += 1
            await self._sqs.change_message_visibility(
                QueueUrl=queue_url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=self._hold(DUPLICATE_AFTER_S),
            )
            return
        await super().delete(queue_url, receipt_handle)

    async def delete_batch(self, queue_url: str, receipt_handles: list[str]) -> None:
        """Each entry meets the duplicate fault a single delete would: a struck one "succeeds"
        and comes back."""
        kept = []
        for receipt in receipt_handles:
            if self.nemesis.strikes("duplicate"):
                self.counters.messages_deleted += 1
                await self._sqs.change_message_visibility(
                    QueueUrl=queue_url,
                    ReceiptHandle=receipt,
                    VisibilityTimeout=self._hold(DUPLICATE_AFTER_S),
                )
            else:
                kept.append(receipt)
        if not kept:
            self.counters.delete += 1  # the one batch request, all of whose entries came back
        else:
            await super().delete_batch(queue_url, kept)

    def start(self) -> None:
        """Start deleting idle queues behind the app, if the spec asks for it."""
        if self.nemesis.spec.queue_delete > 0 and self._deleter is None:
            self._deleter = asyncio.create_task(self._delete_queues())

    async def close(self) -> None:
        if self._deleter is not None:
            self._deleter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._deleter

    async def _delete_queues(self) -> None:
        rate_per_s = self.nemesis.spec.queue_delete / 60
        while True:
            await asyncio.sleep(self.nemesis.expovariate(rate_per_s))
            if not self._urls:
                continue
            url = self.nemesis.choice(sorted(self._urls))
            try:
                if await self._idle(url):
                    await self._sqs.delete_queue(QueueUrl=url)
                    self.nemesis.count("queue_delete")
                    log.info("nemesis deleted the idle queue %s", url)
            except Exception:
                log.debug("nemesis could not delete %s", url, exc_info=True)

    async def _idle(self, url: str) -> bool:
        """SQS deletes only queues left idle; one holding messages is spared here too, so that
        the fault does not also destroy notifications."""
        resp = await self._sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        attrs = resp.get("Attributes", {})
        return all(int(v) == 0 for v in attrs.values())
