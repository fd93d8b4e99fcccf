"""Scenario `idle`: every user holds one stream, and only the first `--active K` of them chat
(per Locust process; 0 by default: nobody). What it measures is the cost of holding idle
connections: SQS requests per open stream per minute in the steady window, and, with K > 0,
the latency of a small conversation among many idle streams.

Users are grouped in conversations of `conversation_size` by their number, so with K a multiple
of it the chatting users' conversations hold no idle user, and idle users receive nothing.

What each user does: joins its group's conversation and opens `tabs` tabs; the first
`active` users also send every 0.5 to 1.5 send intervals, the others only hold their streams.

Tabs, their views and the record: `ChatUser` and `Tab` in `semichat/harness/loadgen/user.py`.
"""

from locust import task

from semichat.harness.loadgen.options import knob_arguments
from semichat.harness.loadgen.user import ChatUser

KNOBS = {"conversation_size": 3, "send_interval": 2.0, "tabs": 1, "active": 0}
knob_arguments(KNOBS)  # --conversation-size and the rest, in `locust --help` and the web UI
# An idle user's task never sends; it only waits, until Locust stops it.
IDLE_WAIT_S = 3600.0


class IdleOrChattingUser(ChatUser):
    @property
    def chatting(self) -> bool:
        return self.config.active < 0 or self.index < self.config.active

    def wait_time(self) -> float:
        if not self.chatting:
            return IDLE_WAIT_S
        return self.paced_wait()

    def on_start(self) -> None:
        super().on_start()
        self.join_conversation()
        self.open_tabs(self.config.tabs)

    @task
    def send(self) -> None:
        if self.chatting:
            self.send_message()
