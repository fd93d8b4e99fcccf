"""Per-process limits: how many streams one user and the whole process hold, how fast a user sends.

Each waiting stream holds a long poll and a pooled connection, so a few thousand streams from one
client would exhaust the pool for everyone; a user past its share gets 429, and a process at its
limit sheds new streams with 503 and `Retry-After` before it or its pool falls over. Sends go
through a token bucket per user: `send_burst` at once, then `sends_per_second`.

The counts live in this process only: N processes behind a load balancer admit up to N times as
much from one user. That bounds what one process can be made to hold, which is the point.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from semichat.server.errors import TooManyRequests, Unavailable
from semichat.server.metrics import LimitCounters
from semichat.server.trust.capacity import stream_cap
from semichat.settings import Settings

# A full process asks clients to come back after this long (the widget adds its own jitter).
STREAMS_RETRY_AFTER_S = 5
# Buckets of users who stopped sending are forgotten once this many are kept.
MAX_IDLE_BUCKETS = 10_000


@dataclass
class TokenBucket:
    """`capacity` tokens, refilled at `rate` per second; each send takes one."""

    rate: float
    capacity: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take a token; returns 0 on success, else the seconds until one is available."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    def full(self, now: float) -> bool:
        return self.tokens + (now - self.updated) * self.rate >= self.capacity


class SendLimiter:
    def __init__(
        self,
        settings: Settings,
        counters: LimitCounters,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = settings.sends_per_second
        self._capacity = float(max(1, settings.send_burst))
        self._counters = counters
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, user_id: str) -> None:
        """Admit one send of `user_id`, or raise 429 with the seconds until the next is due."""
        if self._rate <= 0:
            return
        now = self._clock()
        bucket = self._buckets.get(user_id)
        if bucket is None:
            self._forget_idle(now)
            bucket = TokenBucket(self._rate, self._capacity, self._capacity, now)
            self._buckets[user_id] = bucket
        wait = bucket.take(now)
        if wait > 0:
            self._counters.sends_rejected += 1
            raise TooManyRequests(
                f"too many sends: at most {self._rate:g} a second after a burst of "
                f"{self._capacity:g}",
                retry_after=max(1, math.ceil(wait)),
            )

    def _forget_idle(self, now: float) -> None:
        # A full bucket is what a new user gets anyway, so dropping it changes no decision.
        if len(self._buckets) >= MAX_IDLE_BUCKETS:
            self._buckets = {u: b for u, b in self._buckets.items() if not b.full(now)}


class StreamSlots:
    """Open streams per user and in all; `hold` admits one for as long as it runs."""

    def __init__(self, settings: Settings, counters: LimitCounters) -> None:
        self._per_user = settings.max_streams_per_user
        self.cap = stream_cap(settings)
        self._total = self.cap.limit
        self._counters = counters
        self._open: dict[str, int] = {}
        self.open_total = 0

    def open_for(self, user_id: str) -> int:
        return self._open.get(user_id, 0)

    @contextmanager
    def hold(self, user_id: str) -> Iterator[None]:
        if self._per_user > 0 and self.open_for(user_id) >= self._per_user:
            self._counters.streams_rejected_user += 1
            raise TooManyRequests(
                f"too many open streams: at most {self._per_user} per user; "
                "share one stream between tabs",
                retry_after=STREAMS_RETRY_AFTER_S,
            )
        if self._total > 0 and self.open_total >= self._total:
            self._counters.streams_rejected_process += 1
            raise Unavailable(
                "this server is at its stream limit; retry later",
                retry_after=STREAMS_RETRY_AFTER_S,
            )
        self._open[user_id] = self.open_for(user_id) + 1
        self.open_total += 1
        try:
            yield
        finally:
            self.open_total -= 1
            left = self._open[user_id] - 1
            if left:
                self._open[user_id] = left
            else:
                del self._open[user_id]
