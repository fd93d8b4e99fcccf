"""The model's inputs: how users use the chat, and what one server process can hold.

Defaults are the `chat` scenario's (`loadtests/chat.py`) and the server's settings; each is
checked (`check`), and a value out of range is refused in one line naming it.
"""

from __future__ import annotations

from dataclasses import dataclass

STRATEGIES = ("per_user_queue", "preprovisioned", "sharded", "fifo", "instance")
# Strategies whose streams each long-poll a queue of their own user.
PER_USER = ("per_user_queue", "preprovisioned", "fifo")


class ModelInputError(ValueError):
    """A model input out of range; the message names it."""


@dataclass(frozen=True)
class Activity:
    """What users do. `send_interval_s` is one user's mean time between sends while connected
    (each wait drawn from 0.5 to 1.5 of it, as the scenario does); `connected_hours_per_day`
    and `reconnects_per_hour` turn the simulated window into a month."""

    users: int
    conversation_size: int = 3
    send_interval_s: float = 2.0
    tabs: int = 1
    connected_hours_per_day: float = 8.0
    reconnects_per_hour: float = 0.0
    # How many users chat (the first ones), the rest only holding their streams, as the
    # `idle` scenario's `--active K`; None: everyone.
    active: int | None = None

    @property
    def chatting(self) -> int:
        return self.users if self.active is None else min(self.users, self.active)

    def check(self) -> None:
        _at_least("users", self.users, 1)
        _at_least("conversation size", self.conversation_size, 1)
        _at_least("tabs", self.tabs, 1)
        if not self.send_interval_s > 0:
            raise ModelInputError(f"send interval must be > 0 s, not {self.send_interval_s}")
        if not 0 < self.connected_hours_per_day <= 24:
            raise ModelInputError(
                f"connected hours per day must be in (0, 24], not {self.connected_hours_per_day}"
            )
        if self.active is not None and self.active < 0:
            raise ModelInputError(f"active users must be >= 0, not {self.active}")
        if self.reconnects_per_hour < 0:
            raise ModelInputError(f"reconnect rate must be >= 0, not {self.reconnects_per_hour}")


@dataclass(frozen=True)
class ProcessLimits:
    """What one server process holds. Defaults are measured on the embedded backend (docs/
    capacity.md says how): streams held with acceptable latency per process (per-user queues:
    each holds a long poll, 1,000 to 2,000; shared-queue strategies about 10,000,
    docs/backends.md and benchmarks/bench_streams.py), the client pool (Settings.
    max_pool_connections) and the server's CPU per backend request: its CPU seconds over its
    backend requests (`/metrics` `cpu_s`, `results.json` `backend`), 0.67 to 0.81 ms in the
    100-user chat runs of every strategy (median 0.80), HTTP handling included."""

    streams_per_process: int = 1000
    shared_streams_per_process: int = 10_000
    pool_connections: int = 2000
    cpu_ms_per_request: float = 0.8

    def streams(self, routing: str) -> int:
        per_user = routing in PER_USER
        return min(
            self.streams_per_process if per_user else self.shared_streams_per_process,
            self.pool_connections if per_user else self.shared_streams_per_process,
        )


@dataclass(frozen=True)
class Setup:
    """Strategy settings: shards of `sharded`, long-poll wait, registry heartbeat (`instance`)."""

    routing: str = "per_user_queue"
    shards: int = 4
    wait_seconds: float = 20.0
    registry_refresh_s: float = 30.0
    # User ids are this prefix and the user's number (a run's are `<run_tag>-w0-u<n>`): which
    # shard a user hashes to depends on its id.
    id_prefix: str = "u"
    # The server process's CPU (`model/cpu.py`): per backend answer handled, and the share of
    # a core it gets while it has work. A whole core on AWS or a quiet machine; less on a
    # loaded one, measured from the run (`cpu.measured_share`), never fitted.
    cpu_ms_per_request: float = ProcessLimits.cpu_ms_per_request
    cpu_share: float = 1.0
    # The embedded backend's emulators (`model/emulators.py`), with --validate --emulators: per
    # emulator, the services it serves ("dynamodb", "sqs", "dynamodb+sqs") and its time per
    # request in ms, measured from the run. Empty by default: AWS has no such queue.
    emulator_ms: tuple[tuple[str, float], ...] = ()

    def check(self) -> None:
        if self.routing not in STRATEGIES:
            raise ModelInputError(
                f"unknown strategy {self.routing!r}; choose one of {', '.join(STRATEGIES)}"
            )
        _at_least("shards", self.shards, 1)
        if not 0 < self.cpu_share <= 1:
            raise ModelInputError(f"CPU share must be in (0, 1], not {self.cpu_share}")
        if self.cpu_ms_per_request < 0:
            raise ModelInputError(f"CPU per request must be >= 0 ms, not {self.cpu_ms_per_request}")
        for services, ms in self.emulator_ms:
            if not ms > 0:
                raise ModelInputError(f"{services} emulator time must be > 0 ms, not {ms}")


def _at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise ModelInputError(f"{name} must be at least {low}, not {value}")
