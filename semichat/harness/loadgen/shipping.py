"""Locust beyond one machine: workers ship their recorded events to the master.

A master (`semichat simulate --expect-workers N`) and workers (`semichat worker`) share no
filesystem, only Locust's own ZeroMQ channel. Over it:

- the run's `LoadConfig` travels from master to workers as the custom Locust option
  `--semichat-load` (Locust copies custom options into every spawn message; `plugin.py` sets
  and reads it). `send_until` is made relative (`send_seconds`) and turned absolute by each
  worker when its test starts, so that neither the wait for workers nor a skewed clock
  shortens the sending;
- each worker keeps its event lines in memory and sends them in batches (`semichat_events`:
  a size or a second, whichever comes first);
- the master writes each worker's lines to `events/worker<index>-<node>.jsonl` of the run
  directory, so the checker reads the same files it reads after a local run;
- at the end, Locust's master would tell workers to quit and exit half a second later,
  before the events of their users' last moments (the disconnects) arrive. So when the master
  starts stopping (`test_stopping`) it asks every worker to stop its users and flush
  (`semichat_flush`), and waits, bounded by `FLUSH_TIMEOUT_S`, until each has answered
  `semichat_events_done` with how many lines it sent; the master checks that count.

Event times are the workers' clocks: across machines they must agree (NTP) to within the
latencies measured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import gevent
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from semichat.harness.loadgen.recorder import Recorder

log = logging.getLogger("semichat.shipping")

EVENTS = "semichat_events"
FLUSH = "semichat_flush"
DONE = "semichat_events_done"
BATCH_LINES = 500
SHIP_INTERVAL_S = 1.0
FLUSH_TIMEOUT_S = 60.0


class ShippingRecorder(Recorder):
    """A worker's recorder: lines wait in memory until shipped to the master."""

    def __init__(self, send: Callable[[list[str]], None]) -> None:
        self._send = send
        self._lines: list[str] = []
        self.shipped = 0

    def write(self, line: str) -> None:
        self._lines.append(line)  # greenlets switch only at I/O: no lock needed
        if len(self._lines) >= BATCH_LINES:
            self.ship()

    def ship(self) -> None:
        while self._lines:
            batch, self._lines = self._lines[:BATCH_LINES], self._lines[BATCH_LINES:]
            self._send(batch)
            self.shipped += len(batch)

    def close(self) -> None:
        self.ship()


class EventsCollector:
    """The master's side: one file per worker under `events/`, and who has flushed."""

    def __init__(self, events_dir: Callable[[], Path], runner: MasterRunner) -> None:
        # The current run's `events/`: plain Locust starts a new run directory per test.
        self.events_dir = events_dir
        self.runner = runner
        self.files: dict[str, TextIO] = {}
        self.received: dict[str, int] = {}
        self.done: dict[str, int] = {}

    def on_events(self, environment: Environment, msg: Any) -> None:
        node = str(msg.node_id)
        f = self.files.get(node)
        if f is None:
            index = self.runner.get_worker_index(node)
            path = self.events_dir() / f"worker{index}-{node}.jsonl"
            f = self.files[node] = path.open("a", encoding="utf-8")
        f.write("".join(line + "\n" for line in msg.data["lines"]))
        f.flush()
        self.received[node] = self.received.get(node, 0) + len(msg.data["lines"])

    def on_done(self, environment: Environment, msg: Any) -> None:
        node = str(msg.node_id)
        self.done[node] = int(msg.data["shipped"])
        if self.done[node] != self.received.get(node, 0):
            log.error(
                "worker %s shipped %d event lines, %d arrived",
                node,
                self.done[node],
                self.received.get(node, 0),
            )

    def flush_workers(self, environment: Environment, **_: Any) -> None:
        """Ask every worker to stop and flush; wait until each has (bounded)."""
        nodes = [c.id for c in self.runner.clients.all]
        self.runner.send_message(FLUSH)
        deadline = time.monotonic() + FLUSH_TIMEOUT_S
        while any(n not in self.done for n in nodes) and time.monotonic() < deadline:
            gevent.sleep(0.2)
        missing = [n for n in nodes if n not in self.done]
        if missing:
            log.error("no final events from workers %s within %.0f s", missing, FLUSH_TIMEOUT_S)

    def close(self, **_: Any) -> None:
        for f in self.files.values():
            f.close()
        self.files, self.received, self.done = {}, {}, {}


def install(environment: Environment, events_dir: Callable[[], Path]) -> Recorder | None:
    """Set up shipping for this Locust process: on a worker, return its ShippingRecorder; on a
    master, collect into the current run's `events_dir()`; alone, do nothing (None: the file
    recorder)."""
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        collector = EventsCollector(events_dir, runner)
        runner.register_message(EVENTS, collector.on_events)
        runner.register_message(DONE, collector.on_done)
        environment.events.test_stopping.add_listener(collector.flush_workers)
        # A new test (a web UI restart) writes into its own run directory.
        environment.events.test_start.add_listener(collector.close)
        environment.events.quitting.add_listener(collector.close)
        return None
    if not isinstance(runner, WorkerRunner):
        return None
    worker = runner
    recorder = ShippingRecorder(lambda lines: worker.send_message(EVENTS, {"lines": lines}))

    def shipper() -> None:
        while True:
            gevent.sleep(SHIP_INTERVAL_S)
            recorder.ship()

    def on_flush(environment: Environment, msg: Any) -> None:
        worker.stop()  # its users' on_stop record their last events first
        recorder.ship()
        worker.send_message(DONE, {"shipped": recorder.shipped})

    gevent.spawn(shipper)
    runner.register_message(FLUSH, on_flush, concurrent=True)
    return recorder
