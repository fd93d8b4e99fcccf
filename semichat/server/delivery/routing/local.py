"""Streams held by this process, for strategies that fan out in process (sharded, instance).

A dispatcher receives notifications from a shared queue and hands each to every local stream
of each recipient; a stream reads from its own asyncio queue. Handing off is the end of the
SQS message's life (the dispatcher deletes it): a stream that then fails to write one loses it
on the wire, and the client's history refetch on reconnect is what shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from semichat.server.delivery.routing.base import Delivery, Notification

LOCAL_RECEIPT = "local"
# A stream that never reads (a stalled client) must not hold memory without bound.
MAX_PENDING = 1000


class LocalSubscription:
    # The dispatcher deleted each notification before handing it here.
    ordered = False

    def __init__(self, hub: LocalStreams, user_id: str, wait_seconds: float) -> None:
        self.user_id = user_id
        self._hub = hub
        self._wait = wait_seconds
        self._pending: asyncio.Queue[Notification | None] = asyncio.Queue(MAX_PENDING)
        self.closed = False

    def put(self, notification: Notification) -> bool:
        try:
            self._pending.put_nowait(notification)
        except asyncio.QueueFull:
            return False
        return True

    async def receive(self) -> list[Delivery]:
        if self.closed:
            return []
        # asyncio.timeout, not wait_for: wait_for wraps the get in a task of its own and
        # cancels it on every timeout; with 10,000 idle streams each timing out every 20 s
        # that was about half the server's CPU (py-spy, `benchmarks/bench_streams.py`).
        try:
            async with asyncio.timeout(self._wait):
                first = await self._pending.get()
        except TimeoutError:
            return []
        items = [first]
        while not self._pending.empty():
            items.append(self._pending.get_nowait())
        return [Delivery(n, LOCAL_RECEIPT) for n in items if n is not None]

    async def acknowledge(self, delivery: Delivery) -> None:
        """Nothing to do: the dispatcher acknowledged the SQS message at hand-off."""

    async def release(self, delivery: Delivery) -> None:
        """Nothing to hand back to: the stream is ending, and its client refetches history."""

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self._pending.put_nowait(None)  # wakes a pending receive
        await self._hub.remove(self)


class LocalStreams:
    """user id -> this process's open subscriptions of that user."""

    def __init__(
        self,
        wait_seconds: float,
        on_last_close: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._wait = wait_seconds
        self._streams: dict[str, set[LocalSubscription]] = {}
        self._on_last_close = on_last_close

    def open(self, user_id: str) -> LocalSubscription:
        sub = LocalSubscription(self, user_id, self._wait)
        self._streams.setdefault(user_id, set()).add(sub)
        return sub

    async def remove(self, sub: LocalSubscription) -> None:
        subs = self._streams.get(sub.user_id)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._streams[sub.user_id]
            if self._on_last_close is not None:
                await self._on_last_close(sub.user_id)

    def holds(self, user_id: str) -> bool:
        return user_id in self._streams

    def users(self) -> list[str]:
        return list(self._streams)

    def hand_off(self, user_id: str, notification: Notification) -> int:
        """Give the notification to every local stream of the user; returns how many took it."""
        return sum(sub.put(notification) for sub in self._streams.get(user_id, ()))

    def __len__(self) -> int:
        return sum(len(s) for s in self._streams.values())
