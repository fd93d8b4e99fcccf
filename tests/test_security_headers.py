"""The widget page's browser policy, and logs that carry ids but never message text or tokens."""

from __future__ import annotations

import logging
from html.parser import HTMLParser
from importlib import resources
from typing import Any

import pytest

from semichat.server.api.app import create_app
from semichat.settings import Settings

from .auth_helpers import bearer, make_token, token_settings

Client = Any


async def test_page_sends_csp_and_friends(client: Client) -> None:
    for path in ("/", "/static/widget.js", "/api/session"):
        resp = await client.get(path)
        assert resp.status == 200, path
        csp = {
            d.split()[0]: d.split()[1:] for d in resp.headers["Content-Security-Policy"].split("; ")
        }
        assert csp["script-src"] == ["'self'"]
        assert csp["frame-ancestors"] == ["'none'"]
        assert csp["default-src"] == ["'none'"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"


class _InlineFinder(HTMLParser):
    """Collects what `script-src 'self'` and `style-src 'self'` would block in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script":
            self._in_script = True
            if not names.get("src"):
                self.problems.append("a <script> without src")
        self.problems += [f"{tag} {n}=" for n in names if n.startswith("on") or n == "style"]
        if tag == "style":
            self.problems.append("a <style> element")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("inline script text")


def test_page_has_no_inline_script_or_style() -> None:
    finder = _InlineFinder()
    finder.feed((resources.files("semichat") / "static" / "index.html").read_text())
    assert finder.problems == []
    finder.feed('<script>alert(1)</script><p onclick="x()" style="color: red">')
    assert len(finder.problems) == 4  # the finder itself finds what it should


async def test_logs_carry_ids_not_text_or_tokens(
    aiohttp_client: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    client = await aiohttp_client(create_app(token_settings(settings)))
    token = make_token("alice")
    text = "my card number is 4111-1111"
    caplog.set_level(logging.DEBUG, logger="semichat")
    body = {"conversationId": "support:alice", "text": text, "idempotencyKey": "k1"}
    sent = await client.post("/api/chat/send", json=body, headers=bearer(token))
    assert sent.status == 201
    await client.post("/api/session", headers=bearer(token))
    await client.get(
        "/api/chat/history", params={"conversationId": "support:alice"}, headers=bearer(token)
    )
    await client.get(
        "/api/chat/history", params={"conversationId": "x"}, headers=bearer(token + "x")
    )
    logged = [str(r.__dict__) for r in caplog.records if r.name.startswith("semichat")]
    message_id = (await sent.json())["messageId"]
    assert any(message_id in line for line in logged)
    assert any("'userId': 'alice'" in line for line in logged)
    assert not [line for line in logged if text in line or token in line]
