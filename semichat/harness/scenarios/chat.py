"""Scenario `chat`: users in small conversations, each sending at a steady pace and holding one
SSE stream, as one browser tab of the widget (which shares one stream among a user's tabs).
Each user's first send waits a random part of one interval: users spawned together would
otherwise all send in the same second."""

import random

from locust import task

from semichat.harness.loadgen.user import ChatUser

# What this scenario sets; `semichat simulate` flags override each.
KNOBS = {"conversation_size": 3, "send_interval": 2.0, "tabs": 1}


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
