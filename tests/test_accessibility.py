"""The widget's accessibility (issue 25): axe-core in Chromium finds no serious or critical
violation; keyboard-only use, from focus to send to reading, works; new messages are announced
through a live region.

axe-core (MPL-2.0) is not vendored: the first run installs the pinned version from the npm
registry into a cache folder (`npm install --prefix`), which later runs reuse.
"""

from __future__ import annotations

import os
import subprocess
import urllib.parse
import uuid
from pathlib import Path

import pytest

from . import test_browser, test_browser_edges
from .test_browser import _unavailable, api, wait_until

AXE_VERSION = "4.11.1"
AXE_CACHE = Path(
    os.environ.get("SEMICHAT_AXE_CACHE", Path.home() / ".cache" / "semichat" / "axe-core")
)
BLOCKING = ("serious", "critical")

browser = test_browser.browser
context_factory = test_browser.context_factory
# A server without send limits: the keyboard test sends a scrollful of messages at once.
server = test_browser_edges.edge_server
tag = test_browser.tag


@pytest.fixture(scope="module")
def axe_source() -> str:
    prefix = AXE_CACHE / AXE_VERSION
    script = prefix / "node_modules" / "axe-core" / "axe.min.js"
    if not script.is_file():
        try:
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix),
                 f"axe-core@{AXE_VERSION}"],
                check=True, capture_output=True, timeout=300,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            _unavailable(f"could not install axe-core {AXE_VERSION} with npm: {exc}")
    return script.read_text()


def open_conversation(context, base: str, user: str, conversation_id: str):
    from playwright.sync_api import expect

    page = context.new_page()
    query = urllib.parse.urlencode({"user": user, "conversation": conversation_id})
    page.goto(f"{base}/?{query}")
    expect(page.get_by_test_id("chat-status")).to_have_attribute("data-state", "connected")
    return page


def send(base: str, user: str, conversation_id: str, text: str) -> None:
    body = {"conversationId": conversation_id, "text": text, "idempotencyKey": uuid.uuid4().hex}
    api(base, user, "POST", "/api/chat/send", body)


def new_conversation(base: str, user: str, *others: str) -> str:
    body = {"participants": list(others)}
    return str(api(base, user, "POST", "/api/chat/conversations", body)["conversationId"])


def test_axe_core_finds_no_serious_or_critical_violation(server, context_factory, tag, axe_source):
    from playwright.sync_api import expect

    alice, bob = f"alice-{tag}", f"bob-{tag}"
    conv = new_conversation(server.url, alice, bob)
    send(server.url, bob, conv, f"from bob {tag}")
    send(server.url, alice, conv, f"from alice {tag}")
    # The page's CSP allows only its own scripts: the test's injection bypasses it.
    page = open_conversation(context_factory(bypass_csp=True), server.url, alice, conv)
    expect(page.get_by_test_id("chat-message")).to_have_count(2)
    page.get_by_test_id("chat-input").fill("a message being typed")
    page.add_script_tag(content=axe_source)
    violations = page.evaluate(
        """async () => (await axe.run(document)).violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(" ")),
        }))"""
    )
    for v in violations:
        print(f"axe: {v['impact']} {v['id']}: {v['help']} {v['nodes']}")
    assert [v for v in violations if v["impact"] in BLOCKING] == []


def test_keyboard_only_from_focus_to_send_to_reading(server, context_factory, tag):
    from playwright.sync_api import expect

    alice, bob = f"alice-{tag}", f"bob-{tag}"
    conv = new_conversation(server.url, alice, bob)
    for i in range(30):  # more than the view holds: reading means scrolling
        send(server.url, bob, conv, f"earlier {i:02} {tag}")
    page = open_conversation(context_factory(), server.url, alice, conv)
    expect(page.get_by_test_id("chat-message")).to_have_count(30)
    focused = lambda: page.evaluate("document.activeElement.id")  # noqa: E731

    # Reading: the conversation is the first stop, and the keys scroll it.
    page.keyboard.press("Tab")
    assert focused() == "chat-scroll"
    scroller = page.locator("#chat-scroll")
    bottom = scroller.evaluate("el => el.scrollTop")
    assert bottom > 0  # opened at the newest
    top = lambda: scroller.evaluate("el => el.scrollTop")  # noqa: E731
    pump = lambda seconds: page.wait_for_timeout(seconds * 1000)  # noqa: E731
    page.keyboard.press("Home")
    wait_until(lambda: top() == 0, 10, "Home to scroll to the oldest", sleep=pump)
    page.keyboard.press("End")
    wait_until(lambda: top() >= bottom - 1, 10, "End to scroll to the newest", sleep=pump)

    # Writing: the input next, Enter sends.
    page.keyboard.press("Tab")
    assert focused() == "chat-input"
    first = f"typed and sent with Enter {tag}"
    page.keyboard.type(first)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("chat-message").filter(has_text=first)).to_have_count(1)
    expect(page.get_by_test_id("chat-input")).to_have_value("")
    assert focused() == "chat-input"  # focus stays to write the next one
    # The button is reachable too, and Space presses it.
    second = f"sent with the button {tag}"
    page.keyboard.type(second)
    page.keyboard.press("Tab")
    assert focused() == "chat-send"
    page.keyboard.press("Space")
    expect(page.get_by_test_id("chat-message").filter(has_text=second)).to_have_count(1)
    # Focus is visible where it is: an outline, not the browser's default removed.
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_new_messages_are_announced_through_a_live_region(server, context_factory, tag):
    from playwright.sync_api import expect

    alice, bob = f"alice-{tag}", f"bob-{tag}"
    conv = new_conversation(server.url, alice, bob)
    send(server.url, bob, conv, f"already there {tag}")
    page = open_conversation(context_factory(), server.url, alice, conv)
    region = page.locator("[aria-live=polite]#chat-announce")
    expect(region).to_have_count(1)
    expect(page.get_by_test_id("chat-message")).to_have_count(1)
    assert tag not in region.inner_text()  # history on opening is not read out
    send(server.url, bob, conv, f"news {tag}")
    expect(region).to_have_text(f"bob-{tag}: news {tag}")
    for i in range(3):
        send(server.url, bob, conv, f"burst {i} {tag}")
    expect(region).to_contain_text(f"burst 2 {tag}")
