"""The widget's retry algorithm (`semichat/static/widget.js`), which the simulated client follows
so that a run measures what a browser would do: the same attempts, the same backoff.

`tests/test_retry_matches_widget.py` reads the constants out of widget.js and fails when the
two drift apart.
"""

from __future__ import annotations

import random

# widget.js: SEND_ATTEMPTS = 6, SEND_BACKOFF = { baseMs: 300, capMs: 5000 }: five waits of at
# most 0.3, 0.6, 1.2, 2.4 and 4.8 s, so a send gives up after 4.7 to 9.3 s of waiting.
SEND_ATTEMPTS = 6
SEND_BACKOFF_BASE_S = 0.3
SEND_BACKOFF_CAP_S = 5.0
# widget.js: STREAM_BACKOFF = { baseMs: 500, capMs: 10000 }.
STREAM_BACKOFF_BASE_S = 0.5
STREAM_BACKOFF_CAP_S = 10.0
# widget.js: STALL_INTERVALS = 2, DEFAULT_HEARTBEAT_S = 10: a stream silent for two heartbeat
# intervals (the `ready` event states the interval) is dropped and reconnected.
STALL_INTERVALS = 2
DEFAULT_HEARTBEAT_S = 10.0


def backoff_delay(
    attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None
) -> float:
    """widget.js `backoffDelay`: equal jitter, at least half of the capped exponential delay,
    so that clients that lost the same server do not come back in lockstep."""
    ceiling = min(cap_s, base_s * 2**attempt)
    return ceiling / 2 + (rng or random).random() * (ceiling / 2)


def send_retryable(status: int | None) -> bool:
    """widget.js `deliver`: retry after a network error (no status), a 5xx or a 429; any other
    answer is final."""
    return status is None or status >= 500 or status == 429


class StreamRetry:
    """widget.js `SharedStream`: `onopen` zeroes the attempt and each `onerror` waits
    `backoffDelay(attempt++)`. A stream that opened and was then cut (a platform's cut, a lost
    write) is retried after 0.25 to 0.5 s however many cuts came before it; only failures to
    open in a row back off further."""

    def __init__(self, base_s: float = STREAM_BACKOFF_BASE_S, cap_s: float = STREAM_BACKOFF_CAP_S):
        self.base_s = base_s
        self.cap_s = cap_s
        self.attempt = 0

    def opened(self) -> None:
        self.attempt = 0

    def next_delay(self, rng: random.Random | None = None) -> float:
        delay = backoff_delay(self.attempt, self.base_s, self.cap_s, rng)
        self.attempt += 1
        return delay
