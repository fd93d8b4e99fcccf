"""The delivery figures inside Locust's own statistics, and a delivery tab in its web UI.

The Locust process that records the run (alone, or the master) runs the checker beside it
(`semichat.harness.live`, a child process, so that judging never stalls the users' greenlets)
and fires what it reports through Locust's events API:

- each delivered pair's latency as a request of type ``WIRE`` (the notification on the wire) or
  ``VIEW`` (the message in the tab's view), name ``notification``: Locust's percentiles, charts
  and `--csv` rows show them;
- each pair the checker counts lost, duplicated, reordered or unexpected as a failure of that
  entry, with no response time and the reason as its error, while the run goes on.

Locust rounds response times above 100 ms to two significant digits for its percentiles, and
counts a pair lost live only once its message is `live.LIVE_GRACE_S` old: the exact figures are the
checker's (`semichat check`, `results.json`); Locust's are for watching.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import gevent
from gevent import subprocess
from gevent.event import Event
from locust.env import Environment

log = logging.getLogger("semichat.live_stats")

REQUEST_TYPES = {"wire": "WIRE", "user_view": "VIEW"}
NAME = "notification"
REASONS = {
    "lost": "lost: acknowledged, never received",
    "duplicated": "duplicated: received more than once",
    "reordered": "reordered: received after a message sent later",
    "unexpected": "unexpected: no send reported it",
}
FINAL_TIMEOUT_S = 60.0
ROWS = ("sent", "expected", "delivered", "pending", "lost", "late", "duplicated", "reordered")


class DeliveryFault(Exception):
    """A delivery the checker faults, as Locust's failure table shows it."""


def fire_update(environment: Environment, update: dict[str, Any]) -> None:
    """Fire one judgement's news as Locust request events."""
    fire = environment.events.request.fire
    for level, values in update.get("latencies", {}).items():
        for ms in values:
            fire(
                request_type=REQUEST_TYPES[level],
                name=NAME,
                response_time=ms,
                response_length=0,
                exception=None,
                context={},
            )
    for level, counts in update.get("faults", {}).items():
        for fault, n in counts.items():
            for _ in range(n):
                fire(
                    request_type=REQUEST_TYPES[level],
                    name=NAME,
                    response_time=None,
                    response_length=0,
                    exception=DeliveryFault(REASONS[fault]),
                    context={},
                )


def delivery_rows(results: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The delivery table (`semichat check`'s first rows) as rows for the web UI's tab."""
    if not results:
        return []
    rows = [
        {"figure": f, "wire": results["wire"].get(f, 0), "view": results["user_view"].get(f, 0)}
        for f in ROWS
    ]
    for q in ("p50", "p95", "p99", "max"):
        cells = {}
        for key, level in (("wire", "wire"), ("view", "user_view")):
            value = results[level]["latency_ms"].get(q)
            cells[key] = "-" if value is None else f"{value:.0f} ms"
        rows.append({"figure": f"latency {q}", **cells})
    sends = results.get("sends", {})
    rows.append({"figure": "sends attempted", "wire": sends.get("attempted", 0), "view": ""})
    rows.append({"figure": "sends ok", "wire": sends.get("ok", 0), "view": ""})
    return rows


class LiveStats:
    """The checker child of one run, and the greenlet that fires what it reports."""

    def __init__(self, environment: Environment, run_dir: Path, grace_s: float) -> None:
        self.environment = environment
        self.results: dict[str, Any] | None = None
        self.judgements = 0
        self.done = Event()
        cmd = [sys.executable, "-m", "semichat.harness.live", str(run_dir), "--grace", str(grace_s)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.reader = gevent.spawn(self._read)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                update = json.loads(line)
            except json.JSONDecodeError:
                continue
            fire_update(self.environment, update)
            self.results = update.get("results", self.results)
            self.judgements += 1
            if update.get("final"):
                cost = update.get("cost", {})
                log.info(
                    "live checker: %s judgements, %s s of CPU",
                    cost.get("judgements"),
                    cost.get("cpu_s"),
                )
                break
        self.done.set()

    def finish(self, timeout: float = FINAL_TIMEOUT_S) -> None:
        """Ask for the final judgement and fire it; bounded by `timeout`."""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"final\n")
            self.proc.stdin.flush()
        except OSError:
            pass
        if not self.done.wait(timeout):
            log.error("the live checker gave no final judgement within %.0f s", timeout)
        self.stop()

    def stop(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.kill(block=False)
