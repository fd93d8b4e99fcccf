"""Scenario `queue_ramp`: ever more distinct users come online, each creating its own queue on
first connect, to find where queue creation and the queue count start to hurt."""

from locust import LoadTestShape

from semichat.loadgen.locust_user import ChatUser


class RampingUser(ChatUser):
    pass


class StepRamp(LoadTestShape):
    """Reach `users` in `ramp_steps` equal steps over the run, then hold until it ends."""

    config = RampingUser.config

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        if elapsed >= self.config.duration:
            return None
        steps = max(1, self.config.ramp_steps)
        step = min(steps, int(elapsed / (self.config.duration / steps)) + 1)
        users = max(1, round(self.config.users * step / steps))
        return users, max(1.0, self.config.users / steps)
