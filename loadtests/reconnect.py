"""Scenario `reconnect`: streams are cut after a random `cut_min` to `cut_max` seconds and
reopened while messages keep flowing, as proxies, deploys and flaky mobile networks do.

What each user does: joins its group's conversation, opens `tabs` tabs, each of which cuts its
own stream within the cut range and reconnects, and sends every 0.5 to 1.5 send intervals.

Tabs, their views and the record: `ChatUser` and `Tab` in `semichat/harness/loadgen/user.py`.
"""

from locust import task

from semichat.harness.loadgen.options import knob_arguments
from semichat.harness.loadgen.user import ChatUser

KNOBS = {"conversation_size": 3, "send_interval": 2.0, "tabs": 1, "cut_min": 2.0, "cut_max": 6.0}
knob_arguments(KNOBS)  # --conversation-size and the rest, in `locust --help` and the web UI


class ReconnectingUser(ChatUser):
    def wait_time(self) -> float:
        return self.paced_wait()

    def on_start(self) -> None:
        super().on_start()
        self.join_conversation()
        self.open_tabs(self.config.tabs)  # each tab cuts its stream within the cut range

    @task
    def send(self) -> None:
        self.send_message()
