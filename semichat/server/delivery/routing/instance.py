"""One queue per server process, and a connection registry saying which processes hold whom.

- At start a process creates its own queue (`<prefix>instance-<id>`), records itself in the
  registry and starts its dispatcher (one long poll at a time, whatever its number of streams),
  its heartbeat and its janitor. At clean shutdown it stops them, removes its registry entries
  and deletes its queue.
- A stream registers (user, instance) before its `ready` event, after its local subscription
  exists; the last stream of a user in this process removes the entry when it closes.
- A send looks its recipients up (strongly consistent reads) and sends ONE message per instance
  naming that instance's recipients; the dispatcher hands it to every local stream of each, so
  all of a user's tabs get every notification. A recipient connected nowhere gets nothing
  queued (`not_connected` in `/metrics`).
- The race between a send's look-up and a stream's registration is closed by order: a
  message is stored before its send looks recipients up, and a client refetches history on
  `ready`, which follows the registration. Either the look-up sees the registration (and the
  notification comes), or it ran before it, and then the message was stored before the
  refetch, which shows it.
- Crashes: a dead process's entries stop being refreshed and are ignored once past
  `expiresAt` (at most `registry_ttl_seconds`, 90 s by default; a send to its deleted queue in
  that window is counted as `stale_instances` and skipped); every live process's janitor
  (at start and every `janitor_seconds`) deletes the queues of instances whose record expired,
  and DynamoDB's TTL deletes the stale items.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence

from semichat.server.delivery.routing.base import Envelope, Notification, QueueDirectory
from semichat.server.delivery.routing.dispatcher import Dispatcher
from semichat.server.delivery.routing.local import LocalStreams, LocalSubscription
from semichat.server.delivery.routing.naming import validate_prefix
from semichat.server.delivery.routing.registry import ConnectionRegistry
from semichat.server.delivery.sqs import SqsQueues, is_missing_queue
from semichat.server.locks import KeyedLocks
from semichat.server.metrics import DeliveryCounters
from semichat.settings import Settings

log = logging.getLogger("semichat.routing")

INSTANCE_RETENTION_SECONDS = 300


class InstanceRouter:
    name = "instance"
    stream_holds_poll = False

    def __init__(
        self,
        queues: SqsQueues,
        store: QueueDirectory,
        settings: Settings,
        counters: DeliveryCounters | None = None,
        on_registration_cycle: Callable[[float], None] | None = None,
    ) -> None:
        self._queues = queues
        self._settings = settings
        self._counters = counters or DeliveryCounters()
        self.registry = ConnectionRegistry(
            store.dynamodb, store.table_prefix, self._counters, on_cycle=on_registration_cycle
        )
        self.instance_id = uuid.uuid4().hex[:12]
        self.queue_url = ""
        self._hub = LocalStreams(settings.wait_seconds, on_last_close=self._last_closed)
        self._registered: set[str] = set()
        self._locks = KeyedLocks()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def queue_name(self) -> str:
        return f"{validate_prefix(self._settings.queue_prefix)}instance-{self.instance_id}"

    async def _create_queue(self) -> str:
        self.queue_url = await self._queues.create_queue_patiently(
            self.queue_name,
            {
                "VisibilityTimeout": str(self._settings.visibility_timeout),
                "MessageRetentionPeriod": str(INSTANCE_RETENTION_SECONDS),
            },
        )
        return self.queue_url

    async def start(self) -> None:
        await self._create_queue()
        await self._heartbeat_once()
        try:
            await self.sweep()  # at start, then every janitor_seconds
        except Exception:
            log.warning("instance %s: first sweep failed", self.instance_id, exc_info=True)
        dispatcher = Dispatcher(
            self._queues,
            self._hub,
            self._counters,
            wait_seconds=self._settings.wait_seconds,
            recreate=self._create_queue,
        )
        refresh = self._settings.registry_ttl_seconds / 3
        self._tasks = [
            asyncio.create_task(dispatcher.run(self.queue_url)),
            asyncio.create_task(self._every(refresh, self._heartbeat_once)),
            asyncio.create_task(self._every(self._settings.janitor_seconds, self.sweep)),
        ]
        log.info("instance %s polls %s", self.instance_id, self.queue_url)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if not self.queue_url:
            return
        try:
            await self.registry.remove_all(sorted(self._registered), self.instance_id)
            await self._queues.delete_queue(self.queue_url)
        except Exception:
            # What is left behind expires, and another instance's janitor deletes the queue.
            log.warning("could not clean up instance %s", self.instance_id, exc_info=True)

    async def _every(self, seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:
                log.warning("instance %s: %s failed", self.instance_id, job, exc_info=True)

    async def _heartbeat_once(self) -> None:
        await self.registry.refresh(
            sorted(self._registered),
            self.instance_id,
            self.queue_url,
            self._settings.registry_ttl_seconds,
        )

    async def sweep(self) -> int:
        """The janitor: delete the queues of instances whose record expired."""
        deleted = 0
        for dead in await self.registry.expired_instances():
            if dead.instance_id == self.instance_id:
                continue
            if not await self.registry.forget_instance(dead):
                continue  # refreshed meanwhile: alive after all
            try:
                await self._queues.delete_queue(dead.queue_url)
                deleted += 1
            except Exception as exc:
                if not is_missing_queue(exc):
                    raise
        self._counters.janitor_queues_deleted += deleted
        return deleted

    async def publish(self, recipients: Sequence[str], notification: Notification) -> None:
        connections = await self.registry.lookup(recipients)
        by_queue: dict[str, list[str]] = {}
        for c in connections:
            by_queue.setdefault(c.queue_url, []).append(c.user_id)
        self._counters.not_connected += len(set(recipients) - {c.user_id for c in connections})
        await asyncio.gather(
            *(
                self._send(url, Envelope(notification, tuple(sorted(set(users)))).to_json())
                for url, users in by_queue.items()
            )
        )

    async def _send(self, queue_url: str, body: str) -> None:
        try:
            await self._queues.send(queue_url, body)
        except Exception as exc:
            if not is_missing_queue(exc):
                raise
            # Its instance died: its streams are gone, and their clients refetch on reconnect.
            self._counters.stale_instances += 1

    async def subscribe(self, user_id: str) -> LocalSubscription:
        # Local first, registered second, `ready` third (the stream handler): a notification
        # sent after the registration is visible finds a local stream to take it.
        sub = self._hub.open(user_id)
        try:
            async with self._locks.hold(user_id):
                if user_id not in self._registered:
                    await self.registry.register(
                        user_id,
                        self.instance_id,
                        self.queue_url,
                        self._settings.registry_ttl_seconds,
                    )
                    self._registered.add(user_id)
        except BaseException:
            await sub.close()
            raise
        return sub

    async def _last_closed(self, user_id: str) -> None:
        async with self._locks.hold(user_id):
            if self._hub.holds(user_id) or user_id not in self._registered:
                return  # another stream of this user opened meanwhile
            self._registered.discard(user_id)
            try:
                await self.registry.unregister(user_id, self.instance_id)
            except Exception:
                # The entry expires; until then a send to this instance finds no local stream.
                log.warning("could not unregister %s", user_id, exc_info=True)

    async def provision_users(self, users: Sequence[str], concurrency: int) -> dict[str, str]:
        raise ValueError(
            "routing instance has nothing per user: each server process creates its own queue"
        )
