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

from semichat.server.delivery.routing import Delivery, Subscription
from semichat.server.metrics import SqsCounters

log = logging.getLogger("semichat.orphans")

# Notifications and the subscription that received them (and must settle them).
Batch = tuple[Subscription, list[Delivery]]


class OrphanedPolls:
    def __init__(self, counters: SqsCounters) -> None:
        self._counters = counters
        self._tasks: set[asyncio.Task[None]] = set()
        # Each user's open streams in this process, newest last, by the queue of batches that
        # orphaned polls hand them.
        self._inboxes: dict[str, list[asyncio.Queue[Batch]]] = {}

    def open_inbox(self, user: str) -> asyncio.Queue[Batch]:
        inbox: asyncio.Queue[Batch] = asyncio.Queue()
        self._inboxes.setdefault(user, []).append(inbox)
        return inbox

    def close_inbox(self, user: str, inbox: asyncio.Queue[Batch]) -> list[Batch]:
        """Stop handing batches to this stream; returns those it did not take."""
        inboxes = self._inboxes.get(user, [])
        if inbox in inboxes:
            inboxes.remove(inbox)
        if not inboxes:
            self._inboxes.pop(user, None)
        leftovers = []
        while not inbox.empty():
            leftovers.append(inbox.get_nowait())
        return leftovers

    def acknowledge(self, subscription: Subscription, delivery: Delivery) -> asyncio.Task[None]:
        """Delete a written notification, or release it if the delete fails (the client may
        then see it twice, which it de-duplicates), from a task of its own: the stream writes
        its next notifications and polls again meanwhile. A delete that botocore retries waits
        out its back-off (up to seconds when throttled), and every later notification of the
        stream used to wait with it. The message stays invisible while its delete is under way,
        so no other poll takes it. Returns the task, for a stream that must wait for it."""
        return self._track(self._acknowledge(subscription, delivery))

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

    def adopt(
        self, poll: asyncio.Future[list[Delivery]], subscription: Subscription, user: str = ""
    ) -> None:
        self._track(self._release_when_done(poll, subscription, user))

    async def _release_when_done(
        self, poll: asyncio.Future[list[Delivery]], subscription: Subscription, user: str
    ) -> None:
        try:
            deliveries = await poll
        except Exception:
            return  # the poll failed: it holds nothing to give back
        if not deliveries:
            return
        inboxes = self._inboxes.get(user)
        if inboxes:
            # The user has reconnected: its new stream writes them now. Released instead, they
            # would go to the queue's next waiting poll, often another orphan (a stream cut
            # every few seconds leaves several 20 s polls waiting), and so on, snowballing.
            inboxes[-1].put_nowait((subscription, list(deliveries)))
            self._counters.orphan_handoffs += len(deliveries)
            return
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
