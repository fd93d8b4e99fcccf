"""Scenario `queue_ramp`: ever more distinct users come online, each creating its own queue on
first connect, to find where queue creation and the queue count start to hurt.

What each user does: joins a conversation of its own (`conversation_size` 1), opens its tab
and sends every `send_interval` seconds; `StepRamp` below decides how many users there are.

Tabs, their views and the record: `ChatUser` and `Tab` in `semichat/harness/loadgen/user.py`.
"""

from locust import LoadTestShape, task

from semichat.harness.loadgen.config import LoadConfig
from semichat.harness.loadgen.options import knob_arguments
from semichat.harness.loadgen.user import ChatUser

# Alone in their conversations, rarely sending: what grows is the number of users (and queues).
KNOBS = {"conversation_size": 1, "send_interval": 10.0, "tabs": 1, "ramp_steps": 5}
knob_arguments(KNOBS)  # --conversation-size and the rest, in `locust --help` and the web UI


class RampingUser(ChatUser):
    def wait_time(self) -> float:
        return self.config.send_interval

    def on_start(self) -> None:
        super().on_start()
        self.join_conversation()
        self.open_tabs(self.config.tabs)

    @task
    def send(self) -> None:
        self.send_message()


class StepRamp(LoadTestShape):
    """Reach `users` in `ramp_steps` equal steps over `duration`, then hold until it ends."""

    @property
    def config(self) -> LoadConfig:
        return RampingUser.config  # set at each test's start, knobs included

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        if elapsed >= self.config.duration:
            return None
        steps = max(1, self.config.ramp_steps)
        step = min(steps, int(elapsed / (self.config.duration / steps)) + 1)
        users = max(1, round(self.config.users * step / steps))
        return users, max(1.0, self.config.users / steps)
