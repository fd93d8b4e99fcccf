"""Scenario `multitab`: every user has several tabs open, each tab with its own stream and view,
as the seed's widget would (no tab sharing).

What each user does: joins its group's conversation, opens `tabs` tabs (3), then sends a
message every 0.5 to 1.5 send intervals. With one queue per user the tabs compete for each
notification: a tab that does not receive one does not refetch, so its view lags until something
else makes it refetch.

Tabs, their views and the record: `ChatUser` and `Tab` in `semichat/harness/loadgen/user.py`.
"""

from locust import task

from semichat.harness.loadgen.options import knob_arguments
from semichat.harness.loadgen.user import ChatUser

KNOBS = {"conversation_size": 3, "send_interval": 2.0, "tabs": 3}
knob_arguments(KNOBS)  # --conversation-size and the rest, in `locust --help` and the web UI


class MultiTabUser(ChatUser):
    def wait_time(self) -> float:
        return self.paced_wait()

    def on_start(self) -> None:
        super().on_start()
        self.join_conversation()
        self.open_tabs(self.config.tabs)  # each tab: its own stream, its own view

    @task
    def send(self) -> None:
        self.send_message()
