"""Scenario `multitab`: every user has several tabs open, each tab with its own stream and view,
as the seed's widget would (no tab sharing).

With one queue per user the tabs compete for each notification: a tab that does not receive one
does not refetch, so its view lags until something else makes it refetch.
"""

import random

from locust import task

from semichat.harness.loadgen.user import ChatUser

KNOBS = {"conversation_size": 3, "send_interval": 2.0, "tabs": 3}


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
