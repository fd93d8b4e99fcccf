"""The simulated client retries as the widget does: the constants are read out of widget.js."""

from __future__ import annotations

import random
import re
from importlib import resources

from semichat.harness.loadgen import retry, view
from semichat.harness.loadgen.retry import STREAM_BACKOFF_BASE_S, StreamRetry

WIDGET = (resources.files("semichat") / "static" / "widget.js").read_text()


def _backoff(name: str) -> tuple[float, float]:
    m = re.search(rf"const {name} = {{ baseMs: (\d+), capMs: (\d+) }};", WIDGET)
    assert m, f"{name} not found in widget.js"
    return int(m[1]) / 1000, int(m[2]) / 1000


def test_send_attempts_and_backoff_equal_the_widgets() -> None:
    m = re.search(r"const SEND_ATTEMPTS = (\d+);", WIDGET)
    assert m
    assert int(m[1]) == retry.SEND_ATTEMPTS == 6
    assert _backoff("SEND_BACKOFF") == (retry.SEND_BACKOFF_BASE_S, retry.SEND_BACKOFF_CAP_S)
    assert _backoff("STREAM_BACKOFF") == (retry.STREAM_BACKOFF_BASE_S, retry.STREAM_BACKOFF_CAP_S)


def test_backoff_is_the_widgets_equal_jitter() -> None:
    # widget.js: ceiling = min(cap, base * 2 ** attempt); ceiling / 2 + random * ceiling / 2.
    assert "const ceiling = Math.min(capMs, baseMs * 2 ** attempt);" in WIDGET
    assert "return ceiling / 2 + Math.random() * (ceiling / 2);" in WIDGET
    rng = random.Random(1)
    for attempt, ceiling in enumerate([0.3, 0.6, 1.2, 2.4, 4.8, 5.0, 5.0]):
        delays = [retry.backoff_delay(attempt, 0.3, 5.0, rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling


def test_a_send_gives_up_after_about_nine_seconds_as_the_widget_does() -> None:
    waits = [retry.backoff_delay(a, 0.3, 5.0, random.Random(0)) for a in range(5)]
    assert len(waits) == retry.SEND_ATTEMPTS - 1
    assert 4.65 <= sum(waits) <= 9.3


def test_what_is_retried_is_what_the_widget_retries() -> None:
    # widget.js: `if (status < 500 && status !== 429)` is final; a network error is retried.
    assert "if (status < 500 && status !== 429)" in WIDGET
    assert [retry.send_retryable(s) for s in (None, 500, 503, 429, 400, 403, 422, 200)] == [
        True, True, True, True, False, False, False, False,
    ]  # fmt: skip


def test_a_stream_that_opened_is_retried_at_once_however_many_cuts_came_before() -> None:
    # widget.js: onopen zeroes the attempt; onerror waits backoffDelay(this.attempt++).
    assert "this.attempt = 0;" in WIDGET.split("source.onopen")[1].split("};")[0]
    assert "backoffDelay(this.attempt++, STREAM_BACKOFF)" in WIDGET
    retry, rng = StreamRetry(), random.Random(2)
    for _cut in range(6):
        retry.opened()
        assert retry.next_delay(rng) <= STREAM_BACKOFF_BASE_S
    # Failures to open in a row back off: 0.5, 1, 2, 4, 8, then the 10 s cap.
    retry = StreamRetry()
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    waits = [retry.next_delay(rng) for _ in ceilings]
    assert all(c / 2 <= w <= c for w, c in zip(waits, ceilings, strict=True)), waits
    retry.opened()
    assert retry.next_delay(rng) <= STREAM_BACKOFF_BASE_S


def test_history_is_read_as_the_widget_reads_it() -> None:
    for name, value in (
        ("INITIAL_HISTORY", view.INITIAL_HISTORY),
        ("CATCH_UP_FIRST_PAGE", view.CATCH_UP_FIRST_PAGE),
        ("CATCH_UP_PAGE", view.CATCH_UP_PAGE),
        ("CATCH_UP_MAX_PAGE", view.CATCH_UP_MAX_PAGE),
        ("MAX_CATCH_UP_PAGES", view.MAX_CATCH_UP_PAGES),
    ):
        m = re.search(rf"const {name} = (\d+);", WIDGET)
        assert m and int(m[1]) == value, name
    # The widget reads a page of 5 first, then 20, 40, ... up to 200, and stops paging back at a
    # page that reaches a message it already shows once it also shows every message notified
    # before it began.
    assert (
        "return n === 0 ? CATCH_UP_FIRST_PAGE : Math.min(CATCH_UP_MAX_PAGE, "
        "CATCH_UP_PAGE * 2 ** (n - 1));" in WIDGET
    )
    assert "const limit = catchUpLimit(n);" in WIDGET
    assert [view.catch_up_limit(n) for n in range(7)] == [5, 20, 40, 80, 160, 200, 200]
    assert "if ((reachedKnown && reachedWanted) || !page.nextCursor) break;" in WIDGET
    assert "this.sync.request(n.messageId);" in WIDGET


def test_the_stream_watchdog_is_the_widgets() -> None:
    # widget.js: silence for STALL_INTERVALS heartbeat intervals (the `ready` event's) drops the
    # stream; any event (ready, heartbeat, message) re-arms the watchdog.
    m = re.search(r"const STALL_INTERVALS = (\d+);", WIDGET)
    assert m and int(m[1]) == retry.STALL_INTERVALS == 2
    assert "STALL_INTERVALS * this.heartbeatMs" in WIDGET
    assert 'source.addEventListener("heartbeat", () => this.watch(source));' in WIDGET
