"""Scenario `reconnect`: streams are cut after a random `cut_min` to `cut_max` seconds and
reopened while messages keep flowing, as proxies, deploys and flaky mobile networks do."""

import random

from locust import task

from semichat.harness.loadgen.user import ChatUser

KNOBS = {"conversation_size": 3, "send_interval": 2.0, "tabs": 1, "cut_min": 2.0, "cut_max": 6.0}


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
