"""The server process's core, as a SimPy resource: one event loop, run in iterations.

Every backend answer the server handles costs it `cpu_s` of CPU (measured: the server's CPU
seconds over its backend requests, HTTP handling included). The loop handles what is ready in
one iteration: answers that arrive while it is busy, or while it waits for a core, are handled
in the next one, each continuation in its turn, as asyncio runs every ready callback of an
iteration before polling again. What a continuation starts with `asyncio.sleep(0)` (the
group commit's flush) runs once the iteration is over (`iteration_end`): marks whose sends
finished meanwhile share a `BatchWriteItem`.

`share` is the part of a core the process got while it had work: CPU / (CPU + time waiting in
the run queue), measured by the run (Linux schedstat, `measured_share`). On AWS or a quiet
machine a whole core (1.0, the default). On a loaded machine less: the process runs in turns
of about a millisecond (the loaded runs' server: 1.0 ms of CPU a turn, 1.25 ms waiting between
turns), about one iteration each, so each answer takes cpu_s / share of the loop, the fluid
(processor-sharing) form of those turns. An input measured from the run, never fitted.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

WHOLE_CORE = 1.0
# How many recent answers the loop's mean wait is taken over (an exponential moving average):
# the loop's state now, not since the start (a start-up burst would weigh on the whole run).
RECENT_ANSWERS = 100


class Cpu:
    """A FIFO core handling answers in iterations; `handle()` is the event of an answer's
    continuation having run."""

    def __init__(
        self,
        env: simpy.Environment,
        cpu_s: float,
        share: float = WHOLE_CORE,
    ) -> None:
        self.env = env
        self.cpu_s = cpu_s
        self.share = share
        self.ready: simpy.Store = simpy.Store(env)
        self.iterations = 0
        self.handled = 0
        self.recent_wait_s = 0.0  # answers' time from arrival to their continuation's end
        self._iteration_end: simpy.Event | None = None
        if cpu_s > 0:
            env.process(self._loop())

    def handle(self) -> simpy.Event:
        done = self.env.event()
        if self.cpu_s <= 0:
            return done.succeed()
        self.ready.put((done, self.env.now))
        return done

    @property
    def mean_wait_s(self) -> float:
        """The mean time the recent answers waited for (and ran on) the loop."""
        return self.recent_wait_s

    def iteration_end(self) -> simpy.Event:
        """The end of the loop's current iteration (now, when it is idle): where
        `asyncio.sleep(0)` resumes, after every continuation of this iteration ran."""
        return self._iteration_end if self._iteration_end is not None else self.env.timeout(0)

    def _loop(self) -> Generator[Any, Any, None]:
        while True:
            first = yield self.ready.get()
            # Everything ready when the iteration starts is its work; what arrives during it
            # waits for the next one. Each continuation runs in its turn within the iteration
            # (asyncio runs the ready callbacks one after another).
            batch = [first, *self.ready.items]
            self.ready.items.clear()
            self._iteration_end = self.env.event()
            for done, arrived in batch:
                yield self.env.timeout(self.cpu_s / self.share)
                self.handled += 1
                self.recent_wait_s += (self.env.now - arrived - self.recent_wait_s) / RECENT_ANSWERS
                done.succeed()
            self.iterations += 1
            ended, self._iteration_end = self._iteration_end, None
            ended.succeed()


def measured_share(cpu_s: float | None, wait_s: float | None) -> float:
    """The share of a core a process got while runnable: its CPU time over its CPU time and
    its time waiting in the run queue (Linux `/proc/<pid>/schedstat`, recorded by the server
    as `cpu_wait_s`). A whole core when the run did not record it."""
    if not cpu_s or wait_s is None or cpu_s + wait_s <= 0:
        return WHOLE_CORE
    return min(WHOLE_CORE, cpu_s / (cpu_s + wait_s))
