"""Scenario `gap`: a tab offline while several pages of messages arrive, then back.

What each conversation does: its first user (the writer) waits until the second user's tab (the
reader) has gone offline, then sends `gap_messages` messages as fast as the server answers
(raise the server's send limits for it: `SEMICHAT_SENDS_PER_SECOND`, `SEMICHAT_SEND_BURST`);
the reader's tab comes back once they are sent, reconnects and catches up. Any further users
just listen. The checker then judges the reader's view: every message once, in order, as the
widget's Chromium test does (`tests/test_browser_edges.py`).

Tabs, their views and the record: `ChatUser` and `Tab` in `semichat/harness/loadgen/user.py`.
"""

from __future__ import annotations

import gevent
from gevent.event import Event
from locust import task

from semichat.harness.loadgen.options import knob_arguments
from semichat.harness.loadgen.user import ChatUser

KNOBS = {"conversation_size": 2, "send_interval": 2.0, "tabs": 1, "gap_messages": 300}
knob_arguments(KNOBS)
# How long the reader's tab stays connected before it goes offline, and online after the gap.
SETTLE_S = 2.0
GROUP_WAIT_S = 60.0

# Per conversation (group of users of this process): the reader is offline; the writer is done.
_offline: dict[int, Event] = {}
_written: dict[int, Event] = {}


class GapUser(ChatUser):
    def wait_time(self) -> float:
        return self.paced_wait()

    def on_start(self) -> None:
        super().on_start()
        self.join_conversation()
        self.open_tabs(self.config.tabs)
        self.gap_group = self.index // max(1, self.config.conversation_size)
        self.gap_role = self.index % max(1, self.config.conversation_size)
        self.done = False

    @task
    def act(self) -> None:
        if self.done:
            return
        self.done = True
        offline = _offline.setdefault(self.gap_group, Event())
        written = _written.setdefault(self.gap_group, Event())
        if self.gap_role == 1:  # the reader
            gevent.sleep(SETTLE_S)
            for tab in self.tabs:
                tab.go_offline()
            offline.set()
            written.wait(GROUP_WAIT_S)
            for tab in self.tabs:
                tab.go_online()
        elif self.gap_role == 0:  # the writer
            offline.wait(GROUP_WAIT_S)
            for _ in range(self.config.gap_messages):
                self.send_message()
            written.set()
