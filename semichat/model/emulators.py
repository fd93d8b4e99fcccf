"""The embedded backend's emulators, as SimPy resources: one moto process per service (DynamoDB,
SQS), each serving every request of its service under one GIL.

An emulator that queues requests answers them back to back when it runs, so the server's
continuations bunch (and marks share a `BatchWriteItem`, notifications a history read); the
profile's latencies, drawn one by one, would spread them out. So with `--validate`, a backend
call holds its service's emulator (capacity 1, FIFO: a request needs about 1 ms of CPU, under
the interpreter's 5 ms switch interval, so one runs to its end before the next) for the run's
service time: the emulator's CPU per request of its service, over the share of a core it got
while runnable (`cpu.measured_share` of its schedstat, `results.json` `backend.emulators`).
The rest of the call's measured latency is transit (the HTTP round trip, the server's client
code), less the emulator's recent mean time in the model (queue and service), which the
profile holds already. AWS has no such emulator: `semichat model` without `--validate` has none.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import simpy

from semichat.model.cpu import RECENT_ANSWERS, measured_share

SERVICES = ("dynamodb", "sqs")


class Emulator:
    """One emulator process: a FIFO server of `service_s` per request."""

    def __init__(self, env: simpy.Environment, service_s: float) -> None:
        self.env = env
        self.service_s = service_s
        self.resource = simpy.Resource(env, capacity=1)
        self.served = 0
        self.busy_s = 0.0
        self.recent_s = 0.0  # the recent requests' mean time here, queue and service

    def serve(self) -> Generator[Any, Any, None]:
        arrived = self.env.now
        with self.resource.request() as turn:
            yield turn
            yield self.env.timeout(self.service_s)
        self.served += 1
        self.busy_s += self.service_s
        self.recent_s += (self.env.now - arrived - self.recent_s) / RECENT_ANSWERS


def service_ms(results: Mapping[str, Any]) -> tuple[tuple[str, float], ...]:
    """Each emulator's time per request in a run, in ms, by the services it serves ("dynamodb",
    "sqs", or "dynamodb+sqs" for one serving both): its CPU over the requests of its services,
    over its share of a core (CPU / (CPU + run-queue wait)). Split backends (the default) run
    DynamoDB in the first emulator and SQS in the second (`backend.json`'s order). Empty when
    the run recorded no emulator."""
    backend = results.get("backend") or {}
    emulators = [e for e in backend.get("emulators") or [] if e and e.get("cpu_s")]
    requests = backend.get("requests") or {}

    def per_request(emulator: Mapping[str, float], services: tuple[str, ...]) -> float | None:
        n = sum(v for k, v in requests.items() if k.split(":")[0] in services)
        if not n:
            return None
        share = measured_share(emulator["cpu_s"], emulator.get("cpu_wait_s"))
        return 1000 * emulator["cpu_s"] / n / share

    groups = [(s,) for s in SERVICES] if len(emulators) == len(SERVICES) else [SERVICES]
    out = []
    for services, emulator in zip(groups, emulators, strict=False):
        ms = per_request(emulator, services)
        if ms is not None:
            out.append(("+".join(services), ms))
    return tuple(out)


def emulators_by_service(
    env: simpy.Environment, given: tuple[tuple[str, float], ...]
) -> dict[str, Emulator]:
    """The model's emulators from `Setup.emulator_ms`, found by each operation's service."""
    out = {}
    for services, ms in given:
        emulator = Emulator(env, ms / 1000)
        for service in services.split("+"):
            out[service] = emulator
    return out
