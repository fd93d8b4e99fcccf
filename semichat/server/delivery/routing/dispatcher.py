"""The per-process poller of a shared queue: receive, hand to local streams, acknowledge.

At least once, up to the hand-off: a notification is deleted from SQS only after it is in
every local stream's own queue, so a process that dies before the delete leaves it to be
received again after the visibility timeout (by this queue's next reader). After the hand-off
the process owns it: a stream that fails to write it, or a crash between hand-off and write,
loses it on the wire, and the client's history refetch on its next notification or reconnect
is what shows the message. Duplicates on the wire come from SQS redelivering a message whose
delete was lost; clients de-duplicate by message id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from semichat.server.delivery.routing.base import Envelope
from semichat.server.delivery.routing.local import LocalStreams
from semichat.server.delivery.sqs import SqsQueues, is_missing_queue
from semichat.server.metrics import DeliveryCounters

log = logging.getLogger("semichat.dispatcher")

BACKOFF_MAX_S = 5.0
# Deletes run beside the next receive instead of before it: waiting for each batch's delete
# halved how many notifications one poller took from a busy backend, and the shared queue's
# backlog grew until notifications were lost (`semichat simulate --scenario chat --users 100
# --routing instance` on the embedded backend). At most this many at once.
MAX_PENDING_DELETES = 4


class Forwarder(Protocol):
    """Passes notifications on among processes that share a queue (`ShardedRouter`)."""

    def seen(self, envelope: Envelope) -> bool:
        """Whether this process already handed this notification to its streams."""
        ...

    async def forward(self, envelope: Envelope, missing: list[str]) -> None:
        """Pass it on, or stop and count `missing` (recipients not held here) as not held."""
        ...


class Dispatcher:
    def __init__(
        self,
        queues: SqsQueues,
        hub: LocalStreams,
        counters: DeliveryCounters,
        *,
        wait_seconds: int,
        recreate: Callable[[], Awaitable[str]],
        forward: Forwarder | None = None,
    ) -> None:
        self._queues = queues
        self._hub = hub
        self._counters = counters
        self._wait = wait_seconds
        self._recreate = recreate
        # Given: each notification also goes to `forward` (before the delete), which passes it
        # on to the other processes; one this process has seen before is not handed off again.
        self._forward = forward
        self._deletes: set[asyncio.Task[None]] = set()
        self._delete_slots = asyncio.Semaphore(MAX_PENDING_DELETES)

    async def run(self, queue_url: str) -> None:
        """Poll `queue_url` until cancelled; survive errors with a capped backoff."""
        failures = 0
        while True:
            try:
                messages = await self._queues.receive(queue_url, self._wait)
                await self.dispatch(queue_url, messages)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if is_missing_queue(exc):
                    log.warning("shared queue %s is gone; recreating it", queue_url)
                    try:
                        queue_url = await self._recreate()
                        continue
                    except Exception:
                        log.exception("could not recreate %s", queue_url)
                else:
                    log.warning("dispatcher poll failed: %s", exc)
                await asyncio.sleep(min(BACKOFF_MAX_S, 0.2 * 2**failures))

    async def dispatch(self, queue_url: str, messages: list[dict[str, Any]]) -> None:
        done: list[str] = []
        for m in messages:
            done.append(m["ReceiptHandle"])
            try:
                envelope = Envelope.from_json(m["Body"])
            except (ValueError, KeyError, TypeError):
                log.warning("dropping a malformed notification from %s", queue_url)
                continue
            missing: list[str] = []
            seen = self._forward is not None and self._forward.seen(envelope)
            for user in () if seen else envelope.recipients:
                taken = self._hub.hand_off(user, envelope.notification)
                self._counters.handed_off += taken
                if not taken:
                    missing.append(user)
            if self._forward is not None:
                try:
                    await self._forward.forward(envelope, missing)
                except Exception:
                    log.warning("could not forward a notification", exc_info=True)
                    self._counters.not_held += len(missing)
                continue
            self._counters.not_held += len(missing)
            if len(missing) == len(envelope.recipients):
                self._counters.dropped += 1
        if done:
            # Handed off already: from here the process owns them, whenever the delete lands.
            await self._delete_slots.acquire()
            task = asyncio.create_task(self._delete(queue_url, done))
            self._deletes.add(task)
            task.add_done_callback(self._deletes.discard)

    async def _delete(self, queue_url: str, receipt_handles: list[str]) -> None:
        try:
            await self._queues.delete_batch(queue_url, receipt_handles)
        except Exception as exc:
            # They come back after the visibility timeout: duplicates, which clients drop.
            log.warning("dispatcher delete failed: %s", exc)
        finally:
            self._delete_slots.release()
