"""A simulation's parameters (`semichat simulate`'s flags), as `params.json` records them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from semichat.harness.loadgen.config import LoadConfig
from semichat.harness.scenarios import scenario_knobs


@dataclass(frozen=True)
class SimulationParams:
    scenario: str
    users: int
    duration: float
    backend: str = "embedded"
    target: str | None = None
    spawn_rate: float = 0.0  # 0: all users within about two seconds
    processes: int = 1
    drain: float = 8.0
    grace: float = 5.0
    # The server's notification routing (passed to the server started here; with --target,
    # what the target is said to run).
    routing: str = "per_user_queue"
    shards: int = 4
    # The nemesis's spec (`semichat/server/faults/nemesis.py`): passed to the server, `crash`
    # done here.
    faults: str = ""
    # Server processes on the target's port (`serve --processes N`): started so here, and /metrics
    # is read from each of them and summed (`server_metrics.py`).
    server_processes: int = 1
    # The embedded backend as two moto processes, DynamoDB's and SQS's: one process serves every
    # request under one GIL, and at 100 active users it was the bottleneck (README, Performance).
    split_backend: bool = True
    # Locust master waiting for this many workers (`semichat worker`, any machine; 0: none),
    # on this address and port.
    expect_workers: int = 0
    master_bind_host: str = "127.0.0.1"
    master_bind_port: int = 5557
    # Locust's web UI on this port instead of a headless run (`simulate --web`); None: headless.
    web_port: int | None = None
    # Delivery figures in Locust's own statistics while the run goes on (`loadgen/live_stats.py`).
    live_delivery: bool = True
    load: LoadConfig = field(default_factory=LoadConfig)

    @classmethod
    def for_scenario(cls, scenario: str, knobs: dict[str, Any], **params: Any) -> SimulationParams:
        """The scenario's own knobs (its `KNOBS`), overridden by `knobs` from the command line."""
        load = replace(LoadConfig(), **{**scenario_knobs(scenario), **knobs})
        return cls(scenario=scenario, load=load, **params)

    def to_json(self) -> dict[str, Any]:
        from semichat.server.faults import FaultSpec

        spec = FaultSpec.parse(self.faults)
        return {**asdict(self), "fault_spec": {**spec.active, "seed": spec.seed}}
