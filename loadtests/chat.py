"""Scenario `chat`: users in small conversations, each sending at a steady pace and holding one
SSE stream, as one browser tab of the widget (which shares one stream among a user's tabs).

What each user does, in order: joins the conversation of its group of `conversation_size`
users, opens `tabs` tabs, waits a random part of one send interval (users spawned together would
otherwise all send in the same second), then sends a message every 0.5 to 1.5 send intervals.

Tabs, their views and the record: `ChatUser` and `Tab` in `semichat/harness/loadgen/user.py`.
"""

from locust import task

from semichat.harness.loadgen.options import knob_arguments
from semichat.harness.loadgen.user import ChatUser

# What this scenario sets; `--conversation-size 5` (Locust) or `semichat simulate` flags override.
KNOBS = {"conversation_size": 3, "send_interval": 2.0, "tabs": 1}
knob_arguments(KNOBS)  # --conversation-size and the rest, in `locust --help` and the web UI


class ChatParticipant(ChatUser):
    def wait_time(self) -> float:
        return self.paced_wait()

    def on_start(self) -> None:
        super().on_start()
        self.join_conversation()
        self.open_tabs(self.config.tabs)
        self.pause_before_first_send()

    @task
    def send(self) -> None:
        self.send_message()
