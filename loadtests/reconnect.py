"""Scenario `reconnect`: streams are cut after a random `cut_min` to `cut_max` seconds and
reopened while messages keep flowing, as proxies, deploys and flaky mobile networks do.

What each user does: joins its group's conversation, opens `tabs` tabs, each of which cuts its
own stream within the cut range and reconnects, and sends every 0.5 to 1.5 send intervals.

Each tab (`loadgen/user.py`, `Tab`) holds one SSE stream, reconnecting with backoff, and
keeps its own view of the conversation: on each notification of a message it does not show yet,
and on each reconnect, it refetches the history and records a `view` for every message that
appears. Everything is recorded in `runs/.../events/`; `semichat check` judges it.
"""

import random

from locust import task

from semichat.harness.loadgen.options import knob_arguments
from semichat.harness.loadgen.user import ChatUser

KNOBS = {"conversation_size": 3, "send_interval": 2.0, "tabs": 1, "cut_min": 2.0, "cut_max": 6.0}
knob_arguments(KNOBS)  # --conversation-size and the rest, in `locust --help` and the web UI


class ReconnectingUser(ChatUser):
    def wait_time(self) -> float:
        return random.uniform(0.5, 1.5) * self.config.send_interval

    def on_start(self) -> None:
        super().on_start()
        self.join_conversation()
        self.open_tabs(self.config.tabs)  # each tab cuts its stream within the cut range

    @task
    def send(self) -> None:
        self.send_message()
