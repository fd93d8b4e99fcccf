"""What a simulated chat user can do in Locust: join a conversation, open tabs, send.

Scenario files (`loadtests/`) compose these into behaviour; Locust's hooks (settings, run
directory, recorder, live statistics) are in `plugin.py`. A tab holds an SSE
stream (reconnecting with backoff) and its own view of the conversation, refetched on
notifications and reconnects, as the widget does.
Everything observed is recorded as events; nothing is judged here.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from itertools import count
from typing import Any

import gevent
from gevent.event import AsyncResult, Event
from locust import FastHttpUser
from locust.env import Environment

from semichat.harness.loadgen import plugin
from semichat.harness.loadgen.config import LoadConfig
from semichat.harness.loadgen.recorder import Recorder
from semichat.harness.loadgen.retry import (
    DEFAULT_HEARTBEAT_S,
    SEND_ATTEMPTS,
    SEND_BACKOFF_BASE_S,
    SEND_BACKOFF_CAP_S,
    STALL_INTERVALS,
    STREAM_BACKOFF_BASE_S,
    StreamRetry,
    backoff_delay,
    send_retryable,
)
from semichat.harness.loadgen.view import (
    ChatView,
    catch_up,
    message_text,
    record_views,
)
from semichat.harness.sse_parser import SseEvent, SseParser

STREAM_PATH = "/api/chat/stream"
GROUP_WAIT_S = 30.0

_local_index = count()
_groups: dict[int, AsyncResult] = {}


class StreamStalled(Exception):
    """The stream stayed open but silent for STALL_INTERVALS heartbeats (the watchdog)."""


def recorder() -> Recorder:
    return plugin.recorder()


def _worker_index(environment: Environment) -> int:
    return int(getattr(environment.runner, "worker_index", 0) or 0)


class Tab:
    """One browser tab: an SSE stream with reconnects, and the view it keeps."""

    def __init__(self, user: ChatUser, number: int) -> None:
        self.user = user
        self.client_id = f"{user.user_id}/tab{number}"
        self.view = ChatView()
        self.dirty = Event()
        # Notified ids not shown yet: the next catch-up pages back until it shows them.
        self.wanted: set[str] = set()
        self.stopping = False
        # Cleared while the tab is offline (`go_offline`): no stream and no history reads.
        self.online = Event()
        self.online.set()
        self._response: Any = None
        self.greenlets = [gevent.spawn(self._stream_loop), gevent.spawn(self._view_loop)]

    def go_offline(self) -> None:
        """The tab's network goes away: its stream ends at once and nothing is read until
        `go_online`, when it reconnects and catches up as after any reconnect."""
        self.online.clear()
        if self._response is not None:
            self._close_response()

    def go_online(self) -> None:
        self.online.set()

    def stop(self) -> None:
        self.stopping = True
        self.online.set()
        self.dirty.set()
        if self._response is not None:
            # Closing the socket ends a blocked readline at once.
            self._close_response()
        gevent.joinall(self.greenlets, timeout=5)
        gevent.killall(self.greenlets, timeout=1)

    def _close_response(self) -> None:
        try:
            self._response._response.release()
        except Exception:
            pass

    def _stream_loop(self) -> None:
        retry = StreamRetry(STREAM_BACKOFF_BASE_S, self.user.config.backoff_max)
        while not self.stopping:
            self.online.wait()
            self._one_stream(retry)
            if self.stopping:
                return
            gevent.sleep(retry.next_delay())

    def _one_stream(self, retry: StreamRetry) -> None:
        user = self.user
        stream_id = uuid.uuid4().hex[:12]
        reason = "server closed"
        connected = False
        cut_after = None
        if user.config.cut_max > 0:
            cut_after = random.uniform(user.config.cut_min, user.config.cut_max)
        started = time.time()
        try:
            resp = user.client.get(
                STREAM_PATH,
                headers={**user.identity, "Accept-Encoding": "identity"},
                stream=True,
                name=STREAM_PATH,
            )
            self._response = resp
            if resp.status_code != 200:
                reason = f"status {resp.status_code}"
                return
            # A cut is the Timeout ending the block from inside readline, so nothing after the
            # loop runs then: say "cut" up front and correct it if the server closes first.
            reason = "cut" if cut_after is not None else "server closed"
            with gevent.Timeout(cut_after, False):
                for event in self._events(resp):
                    if event.event == "ready":
                        connected = True
                        retry.opened()
                        self._on_ready(stream_id, started)
                    elif event.event == "message":
                        self._on_message(event.id, json.loads(event.data), stream_id)
                else:
                    reason = "server closed"
            if self.stopping:
                reason = "user stopped"
        except StreamStalled:
            reason = "stalled"
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            # However the closed socket ended the read (an error, most often), say why.
            if self.stopping:
                reason = "user stopped"
            elif not self.online.is_set():
                reason = "offline"
            if self._response is not None:
                self._close_response()
                self._response = None
            if connected:
                recorder().record(
                    "disconnect",
                    user=user.user_id,
                    stream=stream_id,
                    client=self.client_id,
                    reason=reason,
                )

    def _events(self, resp: Any) -> Iterator[SseEvent]:
        """The stream's events until it ends or the user stops; raises StreamStalled after
        STALL_INTERVALS heartbeat intervals without a line (widget.js `watch`)."""
        parser = SseParser()
        silence = STALL_INTERVALS * DEFAULT_HEARTBEAT_S
        while not self.stopping:
            # readline, not iter_lines: Locust's iter_lines holds events back in 1,024-byte
            # chunks (see shared notes), which would fake latency.
            with gevent.Timeout(silence, StreamStalled):
                line = resp._response.readline(b"\n")
            if not line:
                return
            event = parser.feed(line)
            if event is None:
                continue
            if event.event == "ready":
                stated = json.loads(event.data or "{}").get("heartbeatSeconds")
                silence = STALL_INTERVALS * float(stated or DEFAULT_HEARTBEAT_S)
            yield event

    def _on_ready(self, stream_id: str, started: float) -> None:
        recorder().record(
            "connect",
            user=self.user.user_id,
            stream=stream_id,
            client=self.client_id,
            setup_ms=round((time.time() - started) * 1000, 1),
        )
        self.dirty.set()  # refetch: anything sent while away shows now

    def _on_message(self, event_id: str | None, data: dict[str, Any], stream_id: str) -> None:
        user = self.user
        recorder().record(
            "notification",
            t=time.time(),
            user=user.user_id,
            stream=stream_id,
            client=self.client_id,
            eventId=event_id,
            messageId=data["messageId"],
            conversationId=data["conversationId"],
        )
        # As the widget: a message this view already shows (a duplicate, or one an earlier
        # read took) needs no history read. Unlike the widget, a sender's tab does not show
        # its message from the send's answer: that shows it before others' earlier messages
        # not yet read, which the checker counts as reordered (24 of 2,769 pairs, one 100-user
        # run), and it would time the sender's own view by the send alone.
        if (
            data["conversationId"] == user.conversation_id
            and str(data["messageId"]) not in self.view
        ):
            self.wanted.add(str(data["messageId"]))
            self.dirty.set()

    def _view_loop(self) -> None:
        loaded = False
        while True:
            self.dirty.wait()
            self.online.wait()
            if self.stopping:
                return
            self.dirty.clear()
            try:
                loaded = self._catch_up(loaded)
            except Exception:
                gevent.sleep(0.5)
                self.dirty.set()

    def _catch_up(self, loaded: bool) -> bool:
        def show(messages: list[dict[str, Any]]) -> None:
            record_views(
                recorder(),
                self.view,
                messages,
                t=time.time(),
                user=self.user.user_id,
                client=self.client_id,
                conversation_id=self.user.conversation_id,
            )

        return catch_up(self._history, self.view, loaded, show, self.wanted)

    def _history(self, limit: int, cursor: str | None) -> dict[str, Any] | None:
        user = self.user
        params: dict[str, Any] = {"conversationId": user.conversation_id, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        resp = user.client.get(
            "/api/chat/history", params=params, headers=user.identity, name="/api/chat/history"
        )
        if resp.status_code != 200:
            return None
        return resp.json()  # type: ignore[no-any-return]


class ChatUser(FastHttpUser):
    """A chat participant's building blocks; a scenario file composes them into its behaviour."""

    abstract = True
    # Streams hold connections for minutes: keep the client's timeout above the heartbeat.
    network_timeout = 60.0
    connection_timeout = 10.0
    concurrency = 16
    # The run's settings, set again at each test's start (plugin.py): scenario knobs included.
    config: LoadConfig = plugin.STATE.config

    def on_start(self) -> None:
        self.index = next(_local_index)
        self.worker = _worker_index(self.environment)
        self.user_id = self.identity_of(self.worker, self.index)
        self.identity = {"x-user-id": self.user_id}
        self.seq = 0
        self.tabs: list[Tab] = []

    def on_stop(self) -> None:
        for tab in self.tabs:
            tab.stop()

    def identity_of(self, worker: int, index: int) -> str:
        return f"{self.config.run_tag}-w{worker}-u{index}"

    def join_conversation(self) -> None:
        """Join the conversation of this user's group of `conversation_size` users of the same
        process; the group's first member creates it, the others wait for its id."""
        size = max(1, self.config.conversation_size)
        group = self.index // size
        members = [self.identity_of(self.worker, group * size + i) for i in range(size)]
        slot = _groups.setdefault(group, AsyncResult())
        if self.index % size == 0:
            resp = self.client.post(
                "/api/chat/conversations",
                json={"participants": members},
                headers=self.identity,
                name="/api/chat/conversations",
            )
            resp.raise_for_status()
            slot.set(resp.json()["conversationId"])
        self.conversation_id: str = slot.get(timeout=GROUP_WAIT_S)
        self.participants = members

    def open_tabs(self, count: int) -> None:
        """Open `count` tabs, each with its own SSE stream (reconnecting) and its own view."""
        self.tabs = [Tab(self, n) for n in range(max(1, count))]

    def paced_wait(self) -> float:
        """The time to the next send: 0.5 to 1.5 send intervals, so senders drift apart."""
        return random.uniform(0.5, 1.5) * self.config.send_interval

    def pause_before_first_send(self) -> None:
        """Wait a random part of one send interval, so that users who arrive together start
        sending at their own pace rather than in one volley. Without it every user's first
        send lands in the same two seconds of spawning: at 100 users that volley of 100 sends
        set the run's p99 (sends p50 1.1 s in the first 3 s, 80 ms after, at
        `--send-interval 8`)."""
        gevent.sleep(random.uniform(0.0, self.config.send_interval))

    def send_message(self) -> None:
        """Send one message, retrying with its idempotency key; records the send's outcome."""
        if self.config.send_until and time.time() >= self.config.send_until:
            return
        self.seq += 1
        key = uuid.uuid4().hex
        body = {
            "conversationId": self.conversation_id,
            # The key in the text survives a lost response: see view.idempotency_key.
            "text": message_text(self.user_id, self.seq, key),
            "idempotencyKey": key,
        }
        started = time.time()
        outcome, status, message_id, acked_at = "unknown", None, None, None
        attempts = 0
        try:
            while attempts < SEND_ATTEMPTS:
                if attempts:
                    # Connection error, 5xx or 429: the outcome is unknown; retrying is safe.
                    gevent.sleep(
                        backoff_delay(attempts - 1, SEND_BACKOFF_BASE_S, SEND_BACKOFF_CAP_S)
                    )
                attempts += 1
                with self.client.post(
                    "/api/chat/send",
                    json=body,
                    headers=self.identity,
                    name="/api/chat/send",
                    catch_response=True,
                ) as resp:
                    status = resp.status_code or None
                    if status in (200, 201):
                        outcome, acked_at = "ok", time.time()
                        message_id = resp.json()["messageId"]
                        break
                    if not send_retryable(status):
                        outcome = "failed"
                        break
                    resp.failure(f"send attempt {attempts}: status {status}")
        finally:
            # Also when Locust stops the user mid-send (plain `locust` kills users at once,
            # without --stop-timeout): then the outcome is unknown, and a delivery of the
            # message counts as recovered, not unexpected.
            recorder().record(
                "send",
                t=started,
                user=self.user_id,
                conversationId=self.conversation_id,
                idempotencyKey=key,
                recipients=self.participants,
                outcome=outcome,
                status=status,
                messageId=message_id,
                ackedAt=acked_at,
                attempts=attempts,
                seq=self.seq,
            )


def _set_config(config: LoadConfig) -> None:
    """A test starts (or this module loads): its settings, and users numbered from 0 again in
    conversations of their own (a web UI's second test must not join the first test's)."""
    global _local_index
    ChatUser.config = config
    _local_index = count()
    _groups.clear()


plugin.on_config(_set_config)
