"""Scenario `multitab`: every user has several tabs open, each tab with its own stream and view,
as the seed's widget would (no tab sharing).

What each user does: joins its group's conversation, opens `tabs` tabs (3), then sends a
message every 0.5 to 1.5 send intervals. With one queue per user the tabs compete for each
notification: a tab that does not receive one does not refetch, so its view lags until something
else makes it refetch.

Each tab (`loadgen/user.py`, `Tab`) holds one SSE stream, reconnecting with backoff, and
keeps its own view of the conversation: on each notification of a message it does not show yet,
and on each reconnect, it refetches the history and records a `view` for every message that
appears. Everything is recorded in `runs/.../events/`; `semichat check` judges it.
"""

import random

from locust import task

from semichat.harness.loadgen.options import knob_arguments
from semichat.harness.loadgen.user import ChatUser

KNOBS = {"conversation_size": 3, "send_interval": 2.0, "tabs": 3}
knob_arguments(KNOBS)  # --conversation-size and the rest, in `locust --help` and the web UI


class MultiTabUser(ChatUser):
    def wait_time(self) -> float:
        return random.uniform(0.5, 1.5) * self.config.send_interval

    def on_start(self) -> None:
        super().on_start()
        self.join_conversation()
        self.open_tabs(self.config.tabs)  # each tab: its own stream, its own view

    @task
    def send(self) -> None:
        self.send_message()
