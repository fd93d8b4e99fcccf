"""The seed's strategy: one standard SQS queue per user, created on first use.

The queue URL is kept in the ChatUserQueue table. Queue names are derived from the user id, so
two first uses at once create the same queue (CreateQueue is idempotent) and write the same
mapping. A queue deleted behind the app's back (SQS may drop idle queues) is recreated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from semichat.server.metrics import DeliveryCounters
from semichat.server.routing.base import Delivery, Notification
from semichat.server.routing.naming import user_queue_name
from semichat.server.sqs import SqsQueues, is_missing_queue
from semichat.server.store import ChatStore
from semichat.settings import Settings

log = logging.getLogger("semichat.routing")

RETENTION_SECONDS = 24 * 3600


class PerUserQueueRouter:
    name = "per_user_queue"

    def __init__(
        self,
        queues: SqsQueues,
        store: ChatStore,
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
        return url

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
    ) -> None:
        self._queues = queues
        self._user_id = user_id
        self._url = queue_url
        self._wait = wait_seconds
        self._recreate = recreate

    async def receive(self) -> list[Delivery]:
        try:
            messages = await self._queues.receive(self._url, self._wait)
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
