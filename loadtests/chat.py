"""Scenario `chat`: users in small conversations, each sending at a steady pace and holding one
SSE stream, as one browser tab of the widget (which shares one stream among a user's tabs).

What each user does, in order: joins the conversation of its group of `conversation_size`
users, opens `tabs` tabs, waits a random part of one send interval (users spawned together would
otherwise all send in the same second), then sends a message every 0.5 to 1.5 send intervals.

Each tab (`loadgen/user.py`, `Tab`) holds one SSE stream, reconnecting with backoff, and
keeps its own view of the conversation: on each notification of a message it does not show yet,
and on each reconnect, it refetches the history and records a `view` for every message that
appears. Everything is recorded in `runs/.../events/`; `semichat check` judges it.
"""

import random

from locust import task

from semichat.harness.loadgen.options import knob_arguments
from semichat.harness.loadgen.user import ChatUser

# What this scenario sets; `--conversation-size 5` (Locust) or `semichat simulate` flags override.
KNOBS = {"conversation_size": 3, "send_interval": 2.0, "tabs": 1}
knob_arguments(KNOBS)  # --conversation-size and the rest, in `locust --help` and the web UI


class ChatParticipant(ChatUser):
    def wait_time(self) -> float:
        return random.uniform(0.5, 1.5) * self.config.send_interval

    def on_start(self) -> None:
        super().on_start()
        self.join_conversation()
        self.open_tabs(self.config.tabs)
        self.pause_before_first_send()

    @task
    def send(self) -> None:
        self.send_message()
