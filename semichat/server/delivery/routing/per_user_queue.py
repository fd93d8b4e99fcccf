"""The seed's strategy: one standard SQS queue per user, created on first use.

The queue URL is kept in the ChatUserQueue table. Queue names are derived from the user id, so
two first uses at once create the same queue (CreateQueue is idempotent) and write the same
mapping. A queue deleted behind the app's back (SQS may drop idle queues) is recreated, and the
user's streams in this process stop waiting on the old one at once (see `recreate`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from semichat.server.delivery.routing.base import Delivery, Notification, QueueDirectory
from semichat.server.delivery.routing.naming import user_queue_name
from semichat.server.delivery.sqs import SqsQueues, is_missing_queue
from semichat.server.metrics import DeliveryCounters
from semichat.settings import Settings

log = logging.getLogger("semichat.routing")

RETENTION_SECONDS = 24 * 3600


class PerUserQueueRouter:
    name = "per_user_queue"
    stream_holds_poll = True
    # Whether a stream must see its deletes done before it polls again (FIFO queues).
    ordered = False

    def __init__(
        self,
        queues: SqsQueues,
        store: QueueDirectory,
        settings: Settings,
        counters: DeliveryCounters | None = None,
    ) -> None:
        self._queues = queues
        self._store = store
        self._settings = settings
        self._counters = counters or DeliveryCounters()
        self._urls: dict[str, str] = {}
        # One lookup per user at a time in this process: a user's first send and first stream
        # usually start together, and each CreateQueue is a billed request.
        self._lookups: dict[str, asyncio.Task[str]] = {}
        # Per user, the wake-ups of this process's subscriptions: set when the queue is recreated.
        self._recreated: dict[str, set[asyncio.Event]] = {}

    def queue_name(self, user_id: str) -> str:
        return user_queue_name(self._settings.queue_prefix, user_id)

    def queue_attributes(self) -> dict[str, str]:
        return {
            "VisibilityTimeout": str(self._settings.visibility_timeout),
            "MessageRetentionPeriod": str(RETENTION_SECONDS),
        }

    def send_options(self, notification: Notification) -> dict[str, str]:
        """Extra SendMessage parameters (FIFO's group and de-duplication ids)."""
        return {}

    async def start(self) -> None:
        """Nothing per process: queues are per user."""

    async def close(self) -> None:
        """Nothing per process to remove."""

    async def queue_url(self, user_id: str) -> str:
        url = self._urls.get(user_id)
        if url is not None:
            return url
        lookup = self._lookups.get(user_id)
        if lookup is None:
            lookup = asyncio.ensure_future(self._lookup(user_id))
            self._lookups[user_id] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(user_id, None))
        # shield: one caller giving up (its client left) must not cancel the others' lookup.
        return await asyncio.shield(lookup)

    async def _lookup(self, user_id: str) -> str:
        url = await self._store.get_queue_url(user_id)
        # The mapping is shared by the per-user strategies (fifo's queues have other names):
        # a URL of another strategy's queue is not this one's.
        if url is None or url.rsplit("/", 1)[-1] != self.queue_name(user_id):
            url = await self._create(user_id)
        self._urls[user_id] = url
        return url

    async def recreate(self, user_id: str) -> str:
        log.warning("queue of %s is gone; recreating it", user_id, extra={"userId": user_id})
        self._urls.pop(user_id, None)
        url = await self._create(user_id)
        self._urls[user_id] = url
        # A long poll already waiting may be waiting on the deleted queue (moto's does, for its
        # full 20 s) while sends reach the new one: wake the user's streams to poll again.
        for woken in self._recreated.get(user_id, ()):
            woken.set()
        return url

    def watch_recreation(self, user_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._recreated.setdefault(user_id, set()).add(event)
        return event

    def unwatch_recreation(self, user_id: str, event: asyncio.Event) -> None:
        watchers = self._recreated.get(user_id)
        if watchers is not None:
            watchers.discard(event)
            if not watchers:
                del self._recreated[user_id]

    async def _create(self, user_id: str) -> str:
        url = await self._queues.create_queue(self.queue_name(user_id), self.queue_attributes())
        await self._store.put_queue_url(user_id, url, datetime.now(UTC).isoformat())
        return url

    async def publish(self, recipients: Sequence[str], notification: Notification) -> None:
        await asyncio.gather(*(self._send(user, notification) for user in recipients))

    async def _send(self, user_id: str, notification: Notification) -> None:
        body, options = notification.to_json(), self.send_options(notification)
        url = await self.queue_url(user_id)
        try:
            await self._queues.send(url, body, **options)
        except Exception as exc:
            if not is_missing_queue(exc):
                raise
            await self._queues.send(await self.recreate(user_id), body, **options)

    async def subscribe(self, user_id: str) -> PerUserQueueSubscription:
        return PerUserQueueSubscription(
            self._queues,
            user_id,
            await self.queue_url(user_id),
            wait_seconds=self._settings.wait_seconds,
            recreate=self.recreate,
            recreated=self.watch_recreation(user_id),
            unwatch=lambda event: self.unwatch_recreation(user_id, event),
            ordered=self.ordered,
        )

    async def provision_users(self, users: Sequence[str], concurrency: int) -> dict[str, str]:
        limit = asyncio.Semaphore(concurrency)

        async def one(user: str) -> tuple[str, str]:
            async with limit:
                return user, await self.queue_url(user)

        return dict(await asyncio.gather(*(one(u) for u in users)))


class PerUserQueueSubscription:
    """One stream reading its user's queue; `recreate` heals a queue deleted behind the app."""

    def __init__(
        self,
        queues: SqsQueues,
        user_id: str,
        queue_url: str,
        *,
        wait_seconds: int,
        recreate: Callable[[str], Awaitable[str]],
        recreated: asyncio.Event | None = None,
        unwatch: Callable[[asyncio.Event], None] | None = None,
        ordered: bool = False,
    ) -> None:
        self.ordered = ordered
        self._queues = queues
        self._user_id = user_id
        self._url = queue_url
        self._wait = wait_seconds
        self._recreate = recreate
        self._recreated = recreated
        self._unwatch = unwatch

    async def _poll(self) -> list[dict[str, Any]]:
        """One long poll, given up (nothing lost: its queue is gone) when the queue is recreated."""
        if self._recreated is None:
            return await self._queues.receive(self._url, self._wait)
        self._recreated.clear()
        poll = asyncio.ensure_future(self._queues.receive(self._url, self._wait))
        woken = asyncio.ensure_future(self._recreated.wait())
        try:
            await asyncio.wait({poll, woken}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            poll.cancel()
            raise
        finally:
            woken.cancel()
        if poll.done():
            return poll.result()
        poll.cancel()
        return []

    async def receive(self) -> list[Delivery]:
        try:
            messages = await self._poll()
        except Exception as exc:
            if not is_missing_queue(exc):
                raise
            self._url = await self._recreate(self._user_id)
            return []
        deliveries = []
        for m in messages:
            try:
                notification = Notification.from_json(m["Body"])
            except (ValueError, KeyError, TypeError):
                # Not ours (someone wrote to the queue by hand): drop it rather than loop on it.
                log.warning("dropping malformed notification", extra={"userId": self._user_id})
                await self._queues.delete(self._url, m["ReceiptHandle"])
                continue
            deliveries.append(Delivery(notification=notification, receipt=m["ReceiptHandle"]))
        return deliveries

    async def acknowledge(self, delivery: Delivery) -> None:
        await self._queues.delete(self._url, delivery.receipt)

    async def release(self, delivery: Delivery) -> None:
        await self._queues.release(self._url, delivery.receipt)

    async def close(self) -> None:
        """The queue outlives the stream: what arrives meanwhile waits for the next one."""
        if self._recreated is not None and self._unwatch is not None:
            self._unwatch(self._recreated)
