"""Browser tests for the ChatWidget: the real server as a subprocess, Chromium via Playwright.

Each test names its users uniquely, so that notifications left in one test's per-user queues cannot
reach another test, and marks its texts with a tag, so that assertions find exactly its messages in
the shared support-demo conversation.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from semichat import ports

from .ci import in_ci

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CONVERSATION = "support-demo"
UI_TIMEOUT_MS = 15_000
STARTUP_TIMEOUT_S = 60.0


def _unavailable(reason: str) -> None:
    """In CI a missing browser is a broken pipeline, not an optional extra: fail loudly there."""
    if in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


# --- processes -----------------------------------------------------------------------------------


def wait_until(check, timeout: float, what: str, sleep=time.sleep) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


class Process:
    """A `python -m semichat ...` subprocess in its own process group, logging to artifacts/."""

    def __init__(self, name: str, args: list[str]):
        self.name = name
        self.args = args
        self.proc: subprocess.Popen | None = None
        self.log_path = ARTIFACTS / "logs" / f"{name}.log"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "semichat", *self.args],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, check, what: str) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                tail = self.log_path.read_text()[-2000:]
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")
            return check()

        wait_until(ready, STARTUP_TIMEOUT_S, what)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # The group, so that anything the server started (an embedded backend) goes with it.
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            # Short grace: a graceful shutdown may wait on open event streams for a long time.
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class ChatServer(Process):
    """`semichat serve` on a port held from construction to `release()`: no other process can
    take it before the server binds, nor while a stopped server is started again."""

    def __init__(self, name: str, backend_args: list[str]):
        self._held = ports.reserve("127.0.0.1")
        self.port = ports.port_of(self._held)
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--reuse-port"]
        super().__init__(name, [*args, *backend_args])
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        self.wait_ready(lambda: http_ok(f"{self.url}/healthz"), f"{self.url}/healthz")

    def release(self) -> None:
        self.stop()
        self._held.close()


class Backend(Process):
    """`semichat backend --port 0`: it binds a port of its own and prints it with its endpoint."""

    def __init__(self, name: str):
        super().__init__(name, ["backend", "--port", "0"])
        self.endpoint_url = ""

    def start(self) -> None:
        super().start()
        # It prints its endpoint only once the tables exist, which a bare open port does not mean.
        self.wait_ready(self._endpoint_said, "the backend endpoint")

    def _endpoint_said(self) -> bool:
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{") and '"endpoint"' in line:
                self.endpoint_url = json.loads(line)["endpoint"]
                return True
        return False


# --- HTTP helpers (another user, outside any browser) --------------------------------------------


def api(base: str, user: str, method: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(
        f"{base}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"x-user-id": user, "content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def send_as(base: str, user: str, text: str) -> dict:
    body = {"conversationId": CONVERSATION, "text": text, "idempotencyKey": str(uuid.uuid4())}
    return api(base, user, "POST", "/api/chat/send", body)


def open_streams(base: str) -> int:
    """The server's own count of open SSE streams (all users)."""
    return int(api(base, "metrics-reader", "GET", "/metrics")["sqs"]["open_streams"])


def history_texts(base: str, user: str) -> list[str]:
    page = api(base, user, "GET", f"/api/chat/history?conversationId={CONVERSATION}&limit=200")
    return [m["text"] for m in page["messages"]]


# --- fixtures ------------------------------------------------------------------------------------


# Module scope, not session: the sync API keeps an event loop running in this thread while it is
# open, and pytest-asyncio cannot run the async tests of later modules inside it.
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing: run scripts/install-chromium.sh")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is missing: pip install -e '.[dev]'")
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=30_000
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server() -> Iterator[ChatServer]:
    srv = ChatServer(f"server-{uuid.uuid4().hex[:6]}", ["--backend", "embedded"])
    try:
        srv.start()
        yield srv
    finally:
        srv.release()


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def context_factory(browser):
    """Each browser context is one browser profile: one person's browser with its own cookies."""
    contexts = []

    def new_context(**kwargs):
        ctx = browser.new_context(viewport={"width": 560, "height": 640}, **kwargs)
        ctx.set_default_timeout(UI_TIMEOUT_MS)
        contexts.append(ctx)
        return ctx

    yield new_context
    for ctx in contexts:
        ctx.close()


def open_chat(context, base: str, user: str):
    from playwright.sync_api import expect

    page = context.new_page()
    page.goto(f"{base}/?user={user}&conversation={CONVERSATION}")
    expect(page.get_by_test_id("chat-status")).to_have_attribute("data-state", "connected")
    return page


def messages(page, text: str):
    return page.get_by_test_id("chat-message").filter(has_text=text)


def type_and_send(page, text: str) -> None:
    page.get_by_test_id("chat-input").fill(text)
    page.get_by_test_id("chat-send").click()


# --- tests ---------------------------------------------------------------------------------------


def test_two_users_see_each_others_messages(server, context_factory):
    from playwright.sync_api import expect

    alice = open_chat(context_factory(), server.url, "alice")
    bob = open_chat(context_factory(), server.url, "bob")
    script = [
        (alice, "Hi, my order #1042 has not arrived yet."),
        (bob, "Sorry about that! Let me check the tracking for you."),
        (bob, "It left the warehouse yesterday; it should be with you tomorrow."),
        (alice, "Great, thanks for the quick answer."),
    ]
    for page, text in script:
        type_and_send(page, text)
        for viewer in (alice, bob):
            expect(messages(viewer, text)).to_have_count(1)

    # Both views hold the same messages in the same order, each shown once.
    ids_alice = alice.get_by_test_id("chat-message").evaluate_all(
        "els => els.map(e => e.dataset.messageId)"
    )
    ids_bob = bob.get_by_test_id("chat-message").evaluate_all(
        "els => els.map(e => e.dataset.messageId)"
    )
    assert ids_alice == ids_bob
    assert len(set(ids_alice)) == len(ids_alice)

    # The load-test hook saw each message appear exactly once.
    view = alice.evaluate("window.semichatView")
    assert sorted(v["messageId"] for v in view) == sorted(ids_alice)

    ARTIFACTS.mkdir(exist_ok=True)
    save_side_by_side(alice, bob, ARTIFACTS / "screenshot-two-users.png")


def save_side_by_side(left, right, path: Path) -> None:
    """Both users' views in one picture, composed by the browser itself (no imaging library)."""
    shots = [base64.b64encode(p.screenshot()).decode() for p in (left, right)]
    canvas = left.context.new_page()
    canvas.set_viewport_size({"width": 1144, "height": 664})
    imgs = "".join(
        f'<img src="data:image/png;base64,{s}" style="border:1px solid #d0d7de">' for s in shots
    )
    style = "margin:0;padding:12px;display:flex;gap:12px;background:#e6e8eb"
    canvas.set_content(f'<body style="{style}">{imgs}</body>')
    canvas.screenshot(path=str(path))
    canvas.close()


def test_eight_tabs_of_one_user_share_one_stream(server, context_factory, tag):
    from playwright.sync_api import expect

    user, other = f"carol-{tag}", f"dave-{tag}"
    context = context_factory()
    # Earlier tests' browser contexts are closed: their streams end on the server.
    wait_until(lambda: open_streams(server.url) == 0, UI_TIMEOUT_MS / 1000, "no open stream")
    tabs = [open_chat(context, server.url, user) for _ in range(8)]

    def leaders():
        return [
            t
            for t in tabs
            if t.get_by_test_id("chat-status").get_attribute("data-role") == "leader"
        ]

    # Every tab says "connected", and the server holds one stream for all eight (the server's
    # count, not the widget's own label: eight tabs each with a stream would show 8 here).
    assert open_streams(server.url) == 1

    first = f"to all eight tabs {tag}"
    send_as(server.url, other, first)
    for t in tabs:
        expect(messages(t, first)).to_have_count(1)

    # Closing the tab that holds the stream hands it to one of the others.
    [leader] = leaders()
    leader.close()
    tabs = [t for t in tabs if not t.is_closed()]
    pump = lambda seconds: tabs[0].wait_for_timeout(seconds * 1000)  # noqa: E731
    wait_until(lambda: len(leaders()) == 1, UI_TIMEOUT_MS / 1000, "a new leader tab", sleep=pump)
    for t in tabs:
        expect(t.get_by_test_id("chat-status")).to_have_attribute("data-state", "connected")
    wait_until(
        lambda: open_streams(server.url) == 1, UI_TIMEOUT_MS / 1000, "one stream", sleep=pump
    )

    second = f"after the leader left {tag}"
    send_as(server.url, other, second)
    for t in tabs:
        expect(messages(t, second)).to_have_count(1, timeout=UI_TIMEOUT_MS)
    assert open_streams(server.url) == 1


def test_message_text_is_never_html(server, context_factory, tag):
    from playwright.sync_api import expect

    payload = "<img src=x onerror=alert(1)>"
    page = open_chat(context_factory(), server.url, f"erin-{tag}")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    send_as(server.url, f"mallory-{tag}", f"{payload} {tag}")
    type_and_send(page, f"{payload} typed {tag}")

    for text in (f"{payload} {tag}", f"{payload} typed {tag}"):
        shown = messages(page, text)
        expect(shown).to_have_count(1)
        expect(shown.locator(".chat-text")).to_have_text(text)
    assert page.locator("[data-testid=chat-message] img").count() == 0
    # A probe image that fails to load like the payload's: once its error event has fired, an
    # onerror handler in the messages (rendered earlier) would have fired too. Awaited inside
    # one evaluate: `wait_for_function` re-evaluates its predicate with eval, which the page's
    # CSP (no 'unsafe-eval') refuses whenever the first check comes too early (the test's one
    # flake; microsoft/playwright#36986).
    failed = page.evaluate(
        """() => new Promise((resolve) => { const probe = new Image();
                   probe.addEventListener("error", () => resolve(true));
                   probe.src = "x"; })"""
    )
    assert failed is True
    assert dialogs == []


@pytest.mark.parametrize("lost", ["request", "response"])
def test_send_retry_reuses_the_idempotency_key(server, context_factory, tag, lost):
    from playwright.sync_api import expect

    user = f"frank-{tag}"
    page = open_chat(context_factory(), server.url, user)
    keys: list[str] = []

    def flaky_network(route):
        keys.append(json.loads(route.request.post_data)["idempotencyKey"])
        if len(keys) > 1:
            route.continue_()
        elif lost == "request":
            route.abort("connectionreset")
        else:
            # The server stores the message, but its answer never reaches the page.
            route.fetch()
            route.abort("connectionreset")

    page.route("**/api/chat/send", flaky_network)
    text = f"sent over a flaky network {tag}"
    type_and_send(page, text)
    # When only the response was lost the stream may show the message before the retry goes out.
    # Sleep through Playwright: its route handlers run only while the sync API is waiting on it.
    pump = lambda seconds: page.wait_for_timeout(seconds * 1000)  # noqa: E731
    wait_until(lambda: len(keys) >= 2, UI_TIMEOUT_MS / 1000, "the retried send", sleep=pump)
    assert keys[0] == keys[1]
    expect(page.get_by_test_id("chat-pending")).to_have_count(0)
    expect(messages(page, text)).to_have_count(1)

    # A later message is a barrier: once it shows, any duplicate of the first would show too.
    barrier = f"barrier {tag}"
    send_as(server.url, f"grace-{tag}", barrier)
    expect(messages(page, barrier)).to_have_count(1)
    expect(messages(page, text)).to_have_count(1)
    assert history_texts(server.url, user).count(text) == 1


def test_a_notified_message_that_sorts_behind_shown_ones_still_shows(server, context_factory, tag):
    """A send that commits late sorts behind messages already shown, beyond a catch-up's first
    page of 5: its notification names it, and the widget pages back until it shows. The page
    talks to a faked history and stream, which a real server cannot be made to order so."""
    from playwright.sync_api import expect

    def message(second: float, message_id: str) -> dict:
        return {
            "messageId": message_id,
            "conversationId": CONVERSATION,
            "senderId": f"leo-{tag}",
            "text": f"{message_id} {tag}",
            "createdAt": f"2030-01-01T00:00:{second:06.3f}Z",
        }

    history = [message(i, f"m{i:02}") for i in range(40)]
    reads: list[tuple[int, str | None]] = []

    def serve_history(route) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlparse(route.request.url).query)
        limit, cursor = int(query["limit"][0]), query.get("cursor", [None])[0]
        reads.append((limit, cursor))
        end = int(cursor) if cursor else len(history)
        start = max(0, end - limit)
        body = {"messages": history[start:end], "nextCursor": str(start) if start else None}
        route.fulfill(json=body)

    streams: list = []  # held open until the test answers them
    page = context_factory().new_page()
    page.route(re.compile(r"/api/chat/history\?"), serve_history)
    page.route(re.compile(r"/api/chat/stream$"), lambda route: streams.append(route))
    page.goto(f"{server.url}/?user=kate-{tag}&conversation={CONVERSATION}")
    expect(page.get_by_test_id("chat-message").filter(has_text=tag)).to_have_count(40)
    # The stream may open after the first read shows: wait for it while Playwright dispatches.
    wait_until(
        lambda: streams,
        UI_TIMEOUT_MS / 1000,
        "the stream",
        sleep=lambda s: page.wait_for_timeout(s * 1000),
    )
    assert reads == [(50, None)] and len(streams) == 1

    # Committed late: older than the 8 newest messages, which the page already shows.
    late = message(31.5, "late")
    history.insert(32, late)
    notification = {"conversationId": CONVERSATION, "messageId": "late"}
    streams[0].fulfill(
        status=200,
        content_type="text/event-stream",
        body=f"event: ready\ndata: {{}}\n\nid: 1\ndata: {json.dumps(notification)}\n\n",
    )
    expect(messages(page, f"late {tag}")).to_have_count(1)
    shown = page.get_by_test_id("chat-message").evaluate_all(
        "els => els.map(e => e.dataset.messageId)"
    )
    assert shown == [m["messageId"] for m in history]
    # The (re)connect's catch-up: 5, enough for it. The notification's: 5, then 20 back to it.
    assert reads[1:] == [(5, None), (5, None), (20, "36")], reads


# Each EventSource the page opens, stamped with the page's own clock.
RECORD_STREAM_OPENS = """(() => {
    const Native = window.EventSource;
    window.streamOpens = [];
    window.EventSource = class extends Native {
        constructor(url, init) {
            window.streamOpens.push(performance.now());
            super(url, init);
        }
    };
})()"""


def test_reconnects_after_server_restart_and_catches_up(context_factory, tag):
    from playwright.sync_api import expect

    backend = Backend(f"backend-{tag}")
    flaky = ChatServer(f"restarted-{tag}", [])
    steady = ChatServer(f"steady-{tag}", [])
    try:
        backend.start()
        for server in (flaky, steady):
            server.args += ["--backend", "aws", "--endpoint-url", backend.endpoint_url]
        flaky.start()
        steady.start()
        user = f"heidi-{tag}"
        context = context_factory()
        context.add_init_script(RECORD_STREAM_OPENS)
        page = open_chat(context, flaky.url, user)
        status = page.get_by_test_id("chat-status")

        flaky.stop()
        expect(status).to_have_attribute("data-state", "reconnecting")
        expect(status).to_contain_text("reconnecting")
        # Equal jitter keeps each wait at least as long as the one before: backoff, not a hammer.
        # The backoff alone may take 3.5 s to the fourth attempt; the bound is generous.
        pump = lambda seconds: page.wait_for_timeout(seconds * 1000)  # noqa: E731
        wait_until(
            lambda: len(page.evaluate("window.streamOpens")) >= 5,
            60,
            "four reconnect attempts",
            sleep=pump,
        )
        # When each stream was opened, by the browser's clock (not when this process heard).
        started_ms = page.evaluate("window.streamOpens")[1:5]
        gaps = [round(b - a) for a, b in itertools.pairwise(started_ms)]
        print(f"reconnect gaps measured in the browser: {gaps} ms")
        assert gaps == sorted(gaps), gaps
        assert gaps[-1] >= 2 * gaps[0], gaps

        missed = f"sent while the server was away {tag}"
        send_as(steady.url, f"ivan-{tag}", missed)
        expect(messages(page, missed)).to_have_count(0)

        history_reads: list[float] = []
        page.on(
            "request",
            lambda r: history_reads.append(time.monotonic()) if "/history" in r.url else None,
        )
        flaky.start()
        expect(status).to_have_attribute("data-state", "connected")
        expect(status).to_contain_text("connected")
        expect(messages(page, missed)).to_have_count(1)
        assert history_reads, "the widget should read history again after reconnecting"
    finally:
        flaky.release()
        steady.release()
        backend.stop()


# The widget's stream reconnect ceilings, spelled out: 0.5 s doubling per attempt, capped at 10 s.
STREAM_CEILINGS_MS = [500, 1000, 2000, 4000, 8000] + [10_000] * 7


def test_backoff_delays_are_exponential_jittered_and_capped(server, context_factory):
    page = open_chat(context_factory(), server.url, "judy")
    stats = page.evaluate(
        """(attempts) => {
            const { backoffDelay, STREAM_BACKOFF: cfg } = window.semichat;
            return [...Array(attempts).keys()].map((attempt) => {
                const ds = Array.from({ length: 200 }, () => backoffDelay(attempt, cfg));
                return { min: Math.min(...ds), max: Math.max(...ds), distinct: new Set(ds).size };
            });
        }""",
        len(STREAM_CEILINGS_MS),
    )
    for attempt, (s, ceiling) in enumerate(zip(stats, STREAM_CEILINGS_MS, strict=True)):
        # Equal jitter: uniform over [ceiling / 2, ceiling]; 200 draws come near both ends.
        assert ceiling / 2 <= s["min"] < 0.6 * ceiling, (attempt, s)
        assert 0.9 * ceiling < s["max"] <= ceiling, (attempt, s)
        assert s["distinct"] > 100, "delays should be jittered, not one fixed value"


def test_page_without_identity_says_how_to_pick_one(server, context_factory):
    from playwright.sync_api import expect

    page = context_factory().new_page()
    page.goto(f"{server.url}/")
    expect(page.locator("#chat-error")).to_contain_text("?user=")
    expect(page.get_by_test_id("chat-send")).to_be_disabled()


# --- token mode ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_server(tmp_path_factory) -> Iterator[ChatServer]:
    from .auth_helpers import SECRET

    secret = tmp_path_factory.mktemp("auth") / "secret"
    secret.write_text(SECRET + "\n")
    args = ["--backend", "embedded", "--auth", "token", "--auth-secret-file", str(secret)]
    srv = ChatServer(f"server-token-{uuid.uuid4().hex[:6]}", args)
    try:
        srv.start()
        yield srv
    finally:
        srv.release()


def test_token_mode_signs_in_once_and_keeps_its_support_conversation(token_server, context_factory):
    from playwright.sync_api import expect

    from .auth_helpers import make_token

    context = context_factory()
    page = context.new_page()
    csp_violations: list[str] = []
    page.on(
        "console",
        lambda msg: "Content Security Policy" in msg.text and csp_violations.append(msg.text),
    )
    page.goto(f"{token_server.url}/?token={make_token('alice')}")
    expect(page.get_by_test_id("chat-status")).to_have_attribute("data-state", "connected")
    assert "token=" not in page.url  # taken out of the address bar (and history) at once
    expect(page.locator("#chat-conversation")).to_have_text("support:alice")
    [cookie] = [c for c in context.cookies() if c["name"] == "session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    type_and_send(page, "Where is my parcel?")
    expect(messages(page, "Where is my parcel?")).to_have_count(1)
    reply = urllib.request.Request(
        f"{token_server.url}/api/chat/send",
        method="POST",
        data=json.dumps(
            {"conversationId": "support:alice", "text": "On its way", "idempotencyKey": "r1"}
        ).encode(),
        headers={
            "Authorization": f"Bearer {make_token('support')}",
            "content-type": "application/json",
        },
    )
    urllib.request.urlopen(reply, timeout=10).close()
    expect(messages(page, "On its way")).to_have_count(1)

    page.reload()  # the cookie, not the token, signs the page in from now on
    expect(messages(page, "On its way")).to_have_count(1)

    bob = context_factory().new_page()
    bob.goto(f"{token_server.url}/?token={make_token('bob')}&conversation=support:alice")
    expect(bob.locator("#chat-error")).to_contain_text("another user's support conversation")
    assert csp_violations == []
