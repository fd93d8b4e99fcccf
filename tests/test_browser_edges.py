"""The widget in Chromium at delivery's edges (issue 25): a stream that stalls without closing,
and a tab offline while several pages of messages arrive.

The server runs with a 1 s heartbeat so that the watchdog (two intervals) acts within seconds.
The Done-when's 60 s stall at the default 10 s heartbeat is the same test with
`SEMICHAT_EDGES_HEARTBEAT_S=10 SEMICHAT_EDGES_STALL_S=60` (docs/delivery-edges.md has that run).
"""

from __future__ import annotations

import os
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from . import test_browser
from .stall_proxy import StallProxy
from .test_browser import ChatServer, api, wait_until

# test_browser's fixtures, shared: Chromium once per module, a context per profile, a tag.
browser = test_browser.browser
context_factory = test_browser.context_factory
tag = test_browser.tag

HEARTBEAT_S = float(os.environ.get("SEMICHAT_EDGES_HEARTBEAT_S", "1"))
STALL_S = float(os.environ.get("SEMICHAT_EDGES_STALL_S", "3"))
# widget.js: STALL_INTERVALS = 2; the first reconnect waits at most STREAM_BACKOFF.baseMs.
STALL_INTERVALS = 2
FIRST_BACKOFF_S = 0.5
GAP_MESSAGES = 300


@contextmanager
def environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def edge_server() -> Iterator[ChatServer]:
    """A server with a short heartbeat, and send limits high enough to send 300 at once."""
    srv = ChatServer(f"edges-{uuid.uuid4().hex[:6]}", ["--backend", "embedded"])
    try:
        with environment(
            SEMICHAT_HEARTBEAT_SECONDS=str(HEARTBEAT_S),
            SEMICHAT_SENDS_PER_SECOND="1000",
            SEMICHAT_SEND_BURST="1000",
        ):
            srv.start()
        yield srv
    finally:
        srv.release()


def conversation(base: str, *users: str) -> str:
    body = {"participants": list(users[1:])}
    return str(api(base, users[0], "POST", "/api/chat/conversations", body)["conversationId"])


def send(base: str, user: str, conversation_id: str, text: str) -> dict:
    body = {"conversationId": conversation_id, "text": text, "idempotencyKey": str(uuid.uuid4())}
    return api(base, user, "POST", "/api/chat/send", body)


def open_page(context, base: str, user: str, conversation_id: str):
    from playwright.sync_api import expect

    page = context.new_page()
    query = urllib.parse.urlencode({"user": user, "conversation": conversation_id})
    page.goto(f"{base}/?{query}")
    expect(page.get_by_test_id("chat-status")).to_have_attribute("data-state", "connected")
    return page


def shown_texts(page) -> list[str]:
    return page.eval_on_selector_all(
        "[data-testid=chat-message] .chat-text", "els => els.map(e => e.textContent)"
    )


def test_a_stalled_stream_is_dropped_and_every_message_sent_meanwhile_shows(
    edge_server, context_factory, tag
):
    """The proxy stops forwarding the stream's bytes but keeps both connections open: no error
    reaches EventSource. The widget's watchdog must notice the silence within two heartbeat
    intervals, reconnect, and refetch what was sent meanwhile."""
    from playwright.sync_api import expect

    alice, bob = f"alice-{tag}", f"bob-{tag}"
    conv = conversation(edge_server.url, bob, alice)
    with StallProxy(edge_server.port) as proxy:
        page = open_page(context_factory(), proxy.url, alice, conv)
        wait_until(lambda: proxy.open_streams() == 1, 10, "the stream through the proxy")
        assert proxy.stall_streams() == 1
        stalled_at = time.monotonic()
        sent, reconnected_after = [], None
        # Messages all through the stall window: before and after the widget gives up on it.
        while time.monotonic() - stalled_at < STALL_S:
            sent.append(f"during the stall {len(sent)} {tag}")
            send(edge_server.url, bob, conv, sent[-1])
            if reconnected_after is None and proxy.open_streams() == 1:
                reconnected_after = time.monotonic() - stalled_at
            page.wait_for_timeout(250)
        if reconnected_after is None:
            wait_until(lambda: proxy.open_streams() == 1, 30, "a new stream after the stall")
            reconnected_after = time.monotonic() - stalled_at
        for text in sent:
            expect(page.get_by_test_id("chat-message").filter(has_text=text)).to_have_count(1)
        assert proxy.dropped_bytes > 0, "the stall swallowed nothing: no heartbeat came"
    print(
        f"stalled {STALL_S:g} s at heartbeat {HEARTBEAT_S:g} s: reconnected after "
        f"{reconnected_after:.2f} s; {len(sent)} messages sent during the stall, all shown"
    )
    assert page.evaluate("window.semichatStalls") >= 1
    # Two heartbeats of silence, then the first backoff; slack for a loaded machine.
    assert reconnected_after <= STALL_INTERVALS * HEARTBEAT_S + FIRST_BACKOFF_S + 2.0
    assert [t for t in shown_texts(page) if tag in t] == sent


def test_a_tab_offline_while_300_messages_arrive_shows_all_300_once_in_order(
    edge_server, context_factory, tag
):
    """More than a page of history (the first read after a reconnect takes 5): the catch-up
    pages back, growing to 200 a read, until it meets a message it shows."""
    from playwright.sync_api import expect

    alice, bob = f"alice-{tag}", f"bob-{tag}"
    conv = conversation(edge_server.url, bob, alice)
    before = f"before the gap {tag}"
    send(edge_server.url, bob, conv, before)
    # Offline through the proxy: Playwright's `context.set_offline` leaves an open EventSource
    # on loopback untouched (heartbeats kept coming), so it would not take the tab offline.
    with StallProxy(edge_server.port) as proxy:
        page = open_page(context_factory(), proxy.url, alice, conv)
        status = page.get_by_test_id("chat-status")
        expect(page.get_by_test_id("chat-message").filter(has_text=before)).to_have_count(1)
        history_reads: list[str] = []
        page.on("request", lambda r: history_reads.append(r.url) if "/history" in r.url else None)
        proxy.go_offline()
        expect(status).to_have_attribute("data-state", "reconnecting")
        sent = [f"gap {i:03} {tag}" for i in range(GAP_MESSAGES)]
        for text in sent:
            send(edge_server.url, bob, conv, text)
        assert shown_texts(page)[-1] == before  # nothing reached the tab while it was offline
        proxy.go_online()
        expect(status).to_have_attribute("data-state", "connected", timeout=30_000)
        last = page.get_by_test_id("chat-message").filter(has_text=f"gap 299 {tag}")
        expect(last).to_have_count(1, timeout=30_000)
        shown = shown_texts(page)
        ids = page.eval_on_selector_all(
            "[data-testid=chat-message]", "els => els.map(e => e.dataset.messageId)"
        )
    assert shown == [before, *sent], f"{len(shown)} shown"
    assert len(ids) == len(set(ids)) == GAP_MESSAGES + 1
    limits = [int(urllib.parse.parse_qs(urllib.parse.urlparse(u).query)["limit"][0])
              for u in history_reads]  # fmt: skip
    print(f"history reads after the gap: {limits}")
    assert len(limits) <= 12, limits  # a few growing pages, not 15 pages of 20
