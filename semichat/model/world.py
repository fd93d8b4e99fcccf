"""The simulated world shared by every strategy: the clock (SimPy), the backend's latency, and
what was asked of it, counted by "service:Operation" as the server counts it
(`semichat/aws/usage.py`), split into the users' share and the processes' own.

SimPy (4.x, on PyPI and kept up) is chosen because its plain generator processes and stores
read as the server's coroutines and queues do: no event loop of the project's own.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import simpy

from semichat.model.cpu import Cpu
from semichat.model.emulators import emulators_by_service
from semichat.model.inputs import Activity, Setup
from semichat.model.profile import LatencyProfile

# Per-process work (shard and instance dispatchers, heartbeats) scales with processes, not users.
USER, PROCESS = "user", "process"
# How near in time a run's send must be to lend its slowness to a modelled request (an
# assumption: about the span of the stalls seen on the shared 2-core machine).
TRACE_WINDOW_S = 1.0
# Sizes of the items semichat writes and reads, in bytes (DynamoDB's item-size rules,
# `semichat/aws/capacity.py`), as measured in a run's counted units (docs/capacity.md).
MESSAGE_ITEM_BYTES = 230


@dataclass
class Notice:
    """One notification in a queue: which message, when its send started."""

    message: int
    conversation: int
    sent_at: float
    recipients: tuple[int, ...] = ()


@dataclass
class Tally:
    requests: dict[str, Counter[str]] = field(
        default_factory=lambda: {USER: Counter(), PROCESS: Counter()}
    )
    wire_s: list[float] = field(default_factory=list)
    view_s: list[float] = field(default_factory=list)
    # The send start of each of those (s): latency after a run's warm-up (`model/steady.py`).
    wire_sent: list[float] = field(default_factory=list)
    view_sent: list[float] = field(default_factory=list)
    send_s: list[float] = field(default_factory=list)  # a send's time, as its client sees it
    # Per operation, each call's time held beyond its transit (the emulator's turn and the
    # loop's wait): what a second pass takes off the profile's draws (`World.held`).
    held_s: dict[str, list[float]] = field(default_factory=dict)
    # The most notifications one queue held waiting at once (visible, not yet received).
    depth_max: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    # Per operation: units as the server counts them (`aws/usage.py`).
    read_units_by_op: Counter[str] = field(default_factory=Counter)
    # The `instance` connection registry's share (reads, writes): no managed alternative has it.
    registry_units: list[float] = field(default_factory=lambda: [0.0, 0.0])
    write_units_by_op: Counter[str] = field(default_factory=Counter)
    # The counts at the start of the measured window (`Window.measure_from_s`).
    baseline: dict[str, Counter[str]] = field(default_factory=dict)
    baseline_units: tuple[float, float] = (0.0, 0.0)
    baseline_registry: tuple[float, float] = (0.0, 0.0)
    wire_from: int = 0
    view_from: int = 0

    def mark_baseline(self) -> None:
        self.baseline = {share: Counter(c) for share, c in self.requests.items()}
        self.baseline_units = (self.read_units, self.write_units)
        self.baseline_registry = (self.registry_units[0], self.registry_units[1])
        self.wire_from, self.view_from = len(self.wire_s), len(self.view_s)

    def wire(self, now: float, sent_at: float) -> None:
        self.wire_s.append(now - sent_at)
        self.wire_sent.append(sent_at)

    def view(self, now: float, sent_at: float) -> None:
        self.view_s.append(now - sent_at)
        self.view_sent.append(sent_at)

    def measured(self, share: str) -> Counter[str]:
        out = Counter(self.requests[share])
        out.subtract(self.baseline.get(share, Counter()))
        return out


class World:
    def __init__(
        self, activity: Activity, setup: Setup, profile: LatencyProfile, seed: int = 1
    ) -> None:
        self.env = simpy.Environment()
        self.rng = random.Random(seed)
        self.activity = activity
        self.setup = setup
        self.profile = profile
        self.tally = Tally()
        self.cpu = Cpu(self.env, setup.cpu_ms_per_request / 1000, setup.cpu_share)
        # With --validate --emulators: the run's emulators, by service (`model/emulators.py`).
        self.emulators = emulators_by_service(self.env, setup.emulator_ms)
        self._means: dict[str, float] = {}  # each operation's mean latency in the profile, s
        # Per operation, sorted: the time a first pass held its calls beyond their transit
        # (`Tally.held_s`); when given, taken off each draw at the draw's own quantile.
        self.held: dict[str, list[float]] = {}
        self.record_held = False  # whether to keep `Tally.held_s` (a first pass does)
        # message id -> conversation's message count at its send: what a history page holds.
        self.messages: list[int] = []
        # A run's slowness over time (`overheads.slowness_trace`): when given, each draw's
        # quantile is that of a send the run made near the same time, so that requests slow
        # down together, as they did on the measured machine.
        self.trace: tuple[list[float], list[float]] = ([], [])
        # Item sizes in bytes (set by the simulation from the items semichat writes).
        self.message_bytes = 0
        self.record_bytes = 0

    def count(self, operation: str, share: str = USER, n: int = 1) -> None:
        self.tally.requests[share][operation] += n

    def call(
        self,
        operation: str,
        share: str = USER,
        u: float | None = None,
        at_backend: Callable[[], None] | None = None,
    ) -> Generator[Any, Any, None]:
        """One backend request: counted, and its latency drawn from the profile (at quantile
        `u` when given: the calls of one client request share it, see `chat.py`).
        `at_backend()` runs when the backend does the request (a message stored, visible to
        receives from then on), half-way through its round trip."""
        self.count(operation, share)
        yield from self.answer(operation, u, at_backend)

    def answer(
        self,
        operation: str,
        u: float | None = None,
        at_backend: Callable[[], None] | None = None,
        woken: bool = False,
    ) -> Generator[Any, Any, None]:
        """A request's time to its continuation: the backend's latency (drawn), its turn at
        the service's emulator when one is modelled (half-way), and the server's loop.

        `woken`: a long poll's wake-up, whose request already waits at the backend: the
        backend's turn comes first (`at_backend()` then takes what waits, as moto's receive
        scans its queue once woken and SQS answers with what is available), and the whole
        transit is the way back."""
        u = self.quantile() if u is None else u
        emulator = self.emulators.get(operation.split(":")[0])
        held_s = self.cpu.mean_wait_s + (emulator.recent_s if emulator is not None else 0.0)
        transit_s = self.backend_s(
            operation, self.profile.draw_s(operation, self.rng, u), held_s, u
        )
        started = self.env.now
        there_s = 0.0 if woken else transit_s / 2
        if at_backend is None and emulator is None:
            there_s = transit_s  # nothing happens half-way: one timeout
        yield self.env.timeout(there_s)
        if emulator is not None:
            yield from emulator.serve()
        if at_backend is not None:
            at_backend()
        yield self.env.timeout(transit_s - there_s)
        # The answer waits for the server's loop to handle it (`model/cpu.py`).
        yield self.cpu.handle()
        if self.record_held:
            self.tally.held_s.setdefault(operation, []).append(self.env.now - started - transit_s)

    def backend_s(self, operation: str, measured_s: float, held_s: float, u: float) -> float:
        """The backend's part of a latency the server measured: the server timed each call up
        to its continuation running, so the wait for its loop (and, with --emulators, the time
        at the emulator) is in the profile already, and the model adds its own.

        With a first pass's held times (`held`), the one at the draw's quantile `u` is taken
        off (a slow call was held long): the model's calls then keep the profile's quantiles.
        Else their recent mean (`held_s`) is taken off in proportion to the draw, so that the
        mean is kept and no fast draw is cut to nothing (taken off whole, a mean wait as long
        as the median latency would clip half the draws at zero and lengthen every call)."""
        held = self.held.get(operation)
        if held:
            return max(0.0, measured_s - held[min(len(held) - 1, int(u * len(held)))])
        mean_s = self._means.get(operation)
        if mean_s is None:
            mean_s = self._means[operation] = self.profile.operations[operation].mean() / 1000
        return measured_s * max(0.0, 1.0 - held_s / mean_s) if mean_s > 0 else 0.0

    def quantile(self) -> float:
        """A latency quantile for a request starting now: from the run's trace near this
        time (within TRACE_WINDOW_S), else uniform."""
        times, ranks = self.trace
        if not times:
            return self.rng.random()
        now = self.env.now
        lo = bisect.bisect_left(times, now - TRACE_WINDOW_S)
        hi = bisect.bisect_right(times, now + TRACE_WINDOW_S)
        if hi <= lo:
            return self.rng.random()
        return ranks[self.rng.randrange(lo, hi)]

    def units(
        self, operation: str, read: float = 0.0, write: float = 0.0, registry: bool = False
    ) -> None:
        """DynamoDB units of one request, priced by `aws/capacity.py`'s rules."""
        if registry:
            self.tally.registry_units[0] += read
            self.tally.registry_units[1] += write
        self.tally.read_units += read
        self.tally.write_units += write
        if read:
            self.tally.read_units_by_op[operation] += read  # type: ignore[assignment]
        if write:
            self.tally.write_units_by_op[operation] += write  # type: ignore[assignment]
