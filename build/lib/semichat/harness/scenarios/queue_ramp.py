"""Scenario `queue_ramp`: ever more distinct users come online, each creating its own queue on
first connect, to find where queue creation and the queue count start to hurt."""

from locust import LoadTestShape, task

from semichat.harness.loadgen.user import ChatUser

# Alone in their conversations, rarely sending: what grows is the number of users (and queues).
KNOBS = {"conversation_size": 1, "send_interval": 10.0, "tabs": 1, "ramp_steps": 5}


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

    config = RampingUser.config

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        if elapsed >= self.config.duration:
            return None
        steps = max(1, self.config.ramp_steps)
        step = min(steps, int(elapsed / (self.config.duration / steps)) + 1)
        users = max(1, round(self.config.users * step / steps))
        return users, max(1.0, self.config.users / steps)
