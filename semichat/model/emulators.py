"""The embedded backend's emulators, as SimPy resources: one moto process per service (DynamoDB,
SQS), each serving every request of its service under one GIL.

With `--validate --emulators`, a backend call holds its service's emulator (capacity 1, FIFO:
a request needs about 1 ms of CPU, under the interpreter's 5 ms switch interval, so one runs to
its end before the next) for the emulator's CPU per request of its service, measured by the run
(its schedstat, `results.json` `backend.emulators`, over the requests the server counted). The
rest of the call's measured latency is transit (the HTTP round trip, the server's client
code), less the emulator's recent mean time in the model (queue and service), which the
profile holds already. AWS has no such emulator: `semichat model` without `--validate` has none.

Not divided by the emulator's share of a core: CPU / (CPU + run-queue wait) summed over its
threads does not measure it. moto serves each connection in a thread of its own, and threads
woken at once (a socket ready, the GIL handed over) each count their wait for a core, so the
waits overlap: the 100-user runs' SQS emulators were runnable 1.12 to 1.52 times the wall
clock, a FIFO server at over 100 % (docs/capacity.md). Taken as the share, that service time
saturates the modelled emulator. The CPU alone is the least its queue can be.

Off by default. It was the hypothesis for the loaded runs' bunched marks and did not explain
them (counts moved within seed noise); on the 25 quiet chat runs of 7 December it put the
model's `BatchWriteItem` count further from the run's in every one (docs/capacity.md). The
server's measured latencies hold the emulators' queueing already.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import simpy

from semichat.model.cpu import RECENT_ANSWERS

SERVICES = ("dynamodb", "sqs")


class Emulator:
    """One emulator process: a FIFO server of `service_s` per request."""

    def __init__(self, env: simpy.Environment, service_s: float) -> None:
        self.env = env
        self.service_s = service_s
        self.resource = simpy.Resource(env, capacity=1)
        self.served = 0
        self.recent_s = 0.0  # the recent requests' mean time here, queue and service

    def serve(self) -> Generator[Any, Any, None]:
        arrived = self.env.now
        with self.resource.request() as turn:
            yield turn
            yield self.env.timeout(self.service_s)
        self.served += 1
        self.recent_s += (self.env.now - arrived - self.recent_s) / RECENT_ANSWERS


def _recorded(results: Mapping[str, Any]) -> list[tuple[tuple[str, ...], Mapping[str, float]]]:
    """The run's emulators with the services each served: split backends (the default) run
    DynamoDB in the first and SQS in the second (`backend.json`'s order); one serves both."""
    backend = results.get("backend") or {}
    emulators = [e for e in backend.get("emulators") or [] if e and e.get("cpu_s")]
    groups = [(s,) for s in SERVICES] if len(emulators) == len(SERVICES) else [SERVICES]
    return list(zip(groups, emulators, strict=False))


def _requests(results: Mapping[str, Any], services: tuple[str, ...]) -> int:
    requests = (results.get("backend") or {}).get("requests") or {}
    return sum(int(v) for k, v in requests.items() if k.split(":")[0] in services)


def service_ms(results: Mapping[str, Any]) -> tuple[tuple[str, float], ...]:
    """Each emulator's CPU per request in a run, in ms, by the services it serves ("dynamodb",
    "sqs", or "dynamodb+sqs" for one serving both). Empty when the run recorded none."""
    out = []
    for services, emulator in _recorded(results):
        n = _requests(results, services)
        # Summed over the threads alive at each end: ones that ended meanwhile took their CPU
        # with them, so a nearly idle emulator can record none or less; then it is unknown.
        if n and emulator["cpu_s"] > 0:
            out.append(("+".join(services), 1000 * emulator["cpu_s"] / n))
    return tuple(out)


def runnable_fraction(results: Mapping[str, Any], window_s: float) -> dict[str, float]:
    """Each emulator's CPU plus run-queue wait over the run's window: above 1 when its
    threads' waits overlap, which is why it is not taken as a share of a core (above)."""
    return {
        "+".join(services): (e["cpu_s"] + e.get("cpu_wait_s", 0.0)) / window_s
        for services, e in _recorded(results)
    }


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
