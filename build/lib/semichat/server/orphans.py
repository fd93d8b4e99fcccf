"""Long polls whose stream went away before they returned.

Cancelling such a poll on our side does not cancel it at the queue: the backend goes on waiting
and hands the next notification to a connection nobody reads, so the notification stays
invisible for the whole visibility timeout (30 s: measured on moto with the `reconnect`
scenario and the widget's tab takeover). Letting the poll finish and releasing what it received
makes that notification visible again at once, for the user's next stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from semichat.server.metrics import SqsCounters
from semichat.server.routing import Delivery, Subscription

log = logging.getLogger("semichat.orphans")


class OrphanedPolls:
    def __init__(self, counters: SqsCounters) -> None:
        self._counters = counters
        self._tasks: set[asyncio.Task[None]] = set()

    def adopt(self, poll: asyncio.Future[list[Delivery]], subscription: Subscription) -> None:
        task = asyncio.create_task(self._release_when_done(poll, subscription))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _release_when_done(
        self, poll: asyncio.Future[list[Delivery]], subscription: Subscription
    ) -> None:
        try:
            deliveries = await poll
        except Exception:
            return  # the poll failed: it holds nothing to give back
        for delivery in deliveries:
            try:
                await subscription.release(delivery)
                self._counters.orphan_releases += 1
            except Exception:
                log.warning("could not release an orphaned notification; it returns later")

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
