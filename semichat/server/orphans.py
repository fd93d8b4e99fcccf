"""Long polls and batches whose stream went away before they were done with.

Cancelling such a poll on our side does not cancel it at the queue: the backend goes on waiting
and hands the next notification to a connection nobody reads, so the notification stays
invisible for the whole visibility timeout (30 s: measured on moto with the `reconnect`
scenario and the widget's tab takeover). Letting the poll finish and releasing what it received
makes that notification visible again at once, for the user's next stream.

The same holds for the rest of a batch when its stream is cancelled while it writes or
acknowledges one notification: every notification a stream received ends deleted or released,
whatever ends the stream, and one that ends neither (both calls failed) is counted `unsettled`.
Acknowledgements run as tasks of their own, so that a cancelled stream does not cancel them
half-way (the delete reached SQS or not: nobody would know).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from semichat.server.metrics import SqsCounters
from semichat.server.routing import Delivery, Subscription

log = logging.getLogger("semichat.orphans")


class OrphanedPolls:
    def __init__(self, counters: SqsCounters) -> None:
        self._counters = counters
        self._tasks: set[asyncio.Task[None]] = set()

    async def acknowledge(self, subscription: Subscription, delivery: Delivery) -> None:
        """Delete a written notification, or release it if the delete fails (the client may
        then see it twice, which it de-duplicates). Outlives a cancelled caller."""
        await asyncio.shield(self._track(self._acknowledge(subscription, delivery)))

    async def _acknowledge(self, subscription: Subscription, delivery: Delivery) -> None:
        try:
            await subscription.acknowledge(delivery)
        except Exception:
            log.warning("could not delete a written notification; releasing it", exc_info=True)
            await self._release(subscription, delivery)

    def release_later(self, subscription: Subscription, deliveries: list[Delivery]) -> None:
        """Release a cancelled stream's unwritten notifications, from a task of their own."""
        if deliveries:
            self._track(self._release_all(subscription, list(deliveries)))

    async def _release_all(self, subscription: Subscription, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            await self._release(subscription, delivery)

    async def _release(self, subscription: Subscription, delivery: Delivery) -> None:
        try:
            await subscription.release(delivery)
        except Exception:
            self._counters.unsettled += 1
            log.warning("could not release a notification; it returns after its timeout")

    def _track(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def adopt(self, poll: asyncio.Future[list[Delivery]], subscription: Subscription) -> None:
        self._track(self._release_when_done(poll, subscription))

    async def _release_when_done(
        self, poll: asyncio.Future[list[Delivery]], subscription: Subscription
    ) -> None:
        try:
            deliveries = await poll
        except Exception:
            return  # the poll failed: it holds nothing to give back
        for delivery in deliveries:
            await self._release(subscription, delivery)
            self._counters.orphan_releases += 1

    async def settled(self) -> None:
        """Wait until every settlement under way, and any it started, has finished."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        # Settle what can be settled quickly before giving up on the rest.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
