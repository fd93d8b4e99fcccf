"""A fixed number of shared standard queues; each user hashed to one of them.

A notification is one SQS message per shard among its recipients, naming its recipients. Each
server process polls every shard (one long poll per shard) and hands what it receives to its
own streams of those recipients, then deletes it.

What a process does with a recipient it does not hold: nothing. The message is consumed by
whichever process received it, so with several processes a recipient whose stream is on
another process misses the notification on the wire (counted as `not_held`), and a
notification none of whose recipients is here is dropped (`dropped`). A process cannot tell
"held elsewhere" from "connected nowhere" without a registry (that is the `instance`
strategy), nor whether a user it holds has more tabs on another process. So with several
processes (`Settings.processes`, set by `serve --processes N`), each process that receives a
notification hands it to its own streams (unless it had seen it already) and passes it on
(`forward`): it sends it to the same shard again, naming the processes that have seen it
(`visited`), and deletes the one it received. Whichever process receives the copy does the
same, until every process has seen it or after `FORWARD_HOPS_PER_PROCESS * N` hops; only then
are the recipients the last process did not hold counted `not_held`. The cost: every
notification visits every process, and since a copy lands on a random one (a coupon
collector's P H(P) receives, H the harmonic number), that takes about P H(P) - 1 extra sends,
receives and deletes per notification with P processes (2 for P = 2; `model/limits.forwards`).
Without `processes` set (one process, or processes started apart) nothing is forwarded and the
weakness stays: only the clients' history refetch (on the next notification or
reconnect) shows the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import uuid
from collections.abc import Sequence

from semichat.server.delivery.routing.base import Envelope, Notification, QueueDirectory
from semichat.server.delivery.routing.dispatcher import Dispatcher
from semichat.server.delivery.routing.local import LocalStreams, LocalSubscription
from semichat.server.delivery.routing.naming import validate_prefix
from semichat.server.delivery.sqs import SqsQueues, is_missing_queue
from semichat.server.metrics import DeliveryCounters
from semichat.settings import Settings

# Notifications are worthless after a few minutes: clients refetch history on reconnect.
SHARD_RETENTION_SECONDS = 300
# A forwarded copy lands on a random process: bound the hops (cost) at this many per process.
FORWARD_HOPS_PER_PROCESS = 8


def shard_of(user_id: str, shards: int) -> int:
    """Stable across processes and restarts (unlike Python's salted `hash`)."""
    return int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:8], "big") % shards


class ShardedRouter:
    name = "sharded"
    stream_holds_poll = False

    def __init__(
        self,
        queues: SqsQueues,
        store: QueueDirectory,
        settings: Settings,
        counters: DeliveryCounters | None = None,
    ) -> None:
        if settings.shards < 1:
            raise ValueError("--shards must be at least 1")
        self._queues = queues
        self._settings = settings
        self._counters = counters or DeliveryCounters()
        self._hub = LocalStreams(settings.wait_seconds)
        self._urls: dict[int, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.process_id = uuid.uuid4().hex[:12]

    def shard_name(self, shard: int) -> str:
        prefix = validate_prefix(self._settings.queue_prefix)
        return f"{prefix}shard-{shard:03d}-of-{self._settings.shards:03d}"

    async def _create(self, shard: int) -> str:
        url = await self._queues.create_queue_patiently(
            self.shard_name(shard),
            {
                "VisibilityTimeout": str(self._settings.visibility_timeout),
                "MessageRetentionPeriod": str(SHARD_RETENTION_SECONDS),
            },
        )
        self._urls[shard] = url
        return url

    async def start(self) -> None:
        shards = range(self._settings.shards)
        await asyncio.gather(*(self._create(s) for s in shards))
        for shard in shards:
            dispatcher = Dispatcher(
                self._queues,
                self._hub,
                self._counters,
                wait_seconds=self._settings.wait_seconds,
                recreate=functools.partial(self._create, shard),
                forward=self if self._settings.processes > 1 else None,
            )
            self._tasks.append(asyncio.create_task(dispatcher.run(self._urls[shard])))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def publish(self, recipients: Sequence[str], notification: Notification) -> None:
        by_shard: dict[int, list[str]] = {}
        for user in recipients:
            by_shard.setdefault(shard_of(user, self._settings.shards), []).append(user)
        await asyncio.gather(
            *(
                self._send(shard, Envelope(notification, tuple(users)).to_json())
                for shard, users in by_shard.items()
            )
        )

    def seen(self, envelope: Envelope) -> bool:
        return self.process_id in envelope.visited

    async def forward(self, envelope: Envelope, missing: list[str]) -> None:
        """Pass a notification on to the other processes, unless every process has seen it or
        it has hopped enough; then the recipients not held here are `not_held`."""
        visited = envelope.visited
        if self.process_id not in visited:
            visited += (self.process_id,)
        processes = self._settings.processes
        if len(visited) >= processes or envelope.hops >= FORWARD_HOPS_PER_PROCESS * processes:
            self._counters.not_held += len(missing)
            return
        # Every recipient goes on: one held here may have more tabs on another process.
        onward = Envelope(envelope.notification, envelope.recipients, visited, envelope.hops + 1)
        await self._send(shard_of(envelope.recipients[0], self._settings.shards), onward.to_json())
        self._counters.forwarded += 1

    async def _send(self, shard: int, body: str) -> None:
        url = self._urls.get(shard) or await self._create(shard)
        try:
            await self._queues.send(url, body)
        except Exception as exc:
            if not is_missing_queue(exc):
                raise
            await self._queues.send(await self._create(shard), body)

    async def subscribe(self, user_id: str) -> LocalSubscription:
        return self._hub.open(user_id)

    async def provision_users(self, users: Sequence[str], concurrency: int) -> dict[str, str]:
        raise ValueError(
            "routing sharded has nothing per user: its shard queues are created at start"
        )
