"""Which routing strategy runs on which compute tier, and why the others cannot.

A strategy decides what the server does between requests. `per_user_queue`, `preprovisioned`
and `fifo` do nothing then: each stream long-polls its user's own queue inside its own request,
so they run wherever a request runs, a Lambda invocation included. `sharded` and `instance`
run a dispatcher per process that polls a shared queue and hands notifications to that
process's streams; they need processes that live between requests, which Lambda does not give
(an execution environment is frozen between invocations and serves one request at a time).

`sharded` has a second limit: a notification is consumed by one process, and only processes
started by one supervisor (`serve --processes P`) forward it to each other, so on Fargate it
runs as one task. docs/deploy.md argues every pairing at length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from semichat.deploy.config import ANYONE, DeployConfig
from semichat.settings import ROUTINGS

Deployment = Literal["fargate", "lambda"]
DEPLOYMENTS: tuple[Deployment, ...] = ("fargate", "lambda")

# Why a pairing cannot work, in one line each.
REFUSED: dict[tuple[str, Deployment], str] = {
    ("sharded", "lambda"): "sharded needs a dispatcher polling its shards between requests, and "
    "Lambda freezes an environment between invocations: Fargate only",
    ("instance", "lambda"): "instance needs long-lived processes, each with its own queue, "
    "dispatcher and registry heartbeat, and Lambda freezes an environment between invocations: "
    "Fargate only",
}
SHARDED_TASKS = (
    "sharded on Fargate runs one task: tasks started apart do not forward notifications, so one "
    "consumed by a task misses the recipients another task holds (run `serve --processes P` "
    "inside the one task instead)"
)
DEFAULT_TASKS = 2
# Fargate's task sizes of 1, 2 and 4 vCPU, one server process each.
FARGATE_PROCESSES = (1, 2, 4)
OPEN_FUNCTION_URL = (
    "demo identity on Lambda: a function URL cannot filter callers by address, so only "
    f"semichat:allowed-cidr={ANYONE} says honestly who may call"
)


@dataclass(frozen=True)
class Pairing:
    routing: str
    deployment: Deployment

    @property
    def stack_name(self) -> str:
        """`SemichatFargatePerUserQueue`, `SemichatLambdaFifo`, ..."""
        return "Semichat" + _camel(self.deployment) + _camel(self.routing)

    def __str__(self) -> str:
        return f"{self.routing} on {self.deployment}"


def default_tasks(routing: str) -> int:
    return 1 if routing == "sharded" else DEFAULT_TASKS


def tasks(pairing: Pairing, config: DeployConfig) -> int:
    return config.tasks or default_tasks(pairing.routing)


def refusal(pairing: Pairing, config: DeployConfig | None = None) -> str | None:
    """Why `pairing` cannot work (deployed as `config` says), or None when it can."""
    config = config or DeployConfig()
    if pairing.routing not in ROUTINGS:
        return f"no routing strategy {pairing.routing!r}; one of {', '.join(ROUTINGS)}"
    if pairing.deployment not in DEPLOYMENTS:
        return f"no deployment {pairing.deployment!r}; one of {', '.join(DEPLOYMENTS)}"
    reason = REFUSED.get((pairing.routing, pairing.deployment))
    if reason is not None:
        return reason
    if pairing.routing == "sharded" and tasks(pairing, config) > 1:
        return f"{SHARDED_TASKS}; asked for {tasks(pairing, config)}"
    if pairing.deployment == "lambda" and config.auth == "demo" and config.allowed_cidr != ANYONE:
        return OPEN_FUNCTION_URL
    if pairing.deployment == "lambda" and config.processes != 1:
        return "Lambda serves one request per environment: semichat:processes is for Fargate"
    if pairing.deployment == "fargate" and config.processes not in FARGATE_PROCESSES:
        return f"semichat:processes on Fargate: one per vCPU, {FARGATE_PROCESSES} (a task size)"
    return None


def every_pairing() -> list[Pairing]:
    return [Pairing(r, d) for d in DEPLOYMENTS for r in ROUTINGS]


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
