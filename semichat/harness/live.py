"""The checker while a run goes on: `python -m semichat.harness.live RUN_DIR`.

A Locust process that records a run (alone, or the master of workers) starts this as a child
process (`loadgen/live_stats.py`), so the checker's CPU time never stalls the greenlets that
timestamp notifications. Every few seconds it reads the run's new event lines, judges the run
so far with the delivery checker, and prints one JSON line of what is new since its last line:

- ``latencies``: per level (``wire``, ``user_view``), the latency in ms of each pair first seen
  delivered (expected pairs only, as the checker counts them);
- ``faults``: per level, how many more pairs the checker now counts lost, duplicated, reordered
  or unexpected (a count that shrank adds nothing; unexpected only in the final judgement);
- ``results``: the checker's summary of the run so far (the web UI's delivery tab shows it).

While the run goes on, an expected pair counts as lost only once its message was acknowledged
`LIVE_GRACE_S` before the newest event and it still has not arrived (``pending`` counts the
expected pairs neither delivered nor lost yet), and a delivery as reordered only once it is that
old (the send it overtook may not be recorded yet): a slower notification shows as lost live and
still counts as delivered (and late) in the final figures. A line ``final`` on stdin asks for
the last judgement (printed with ``"final": true``); then it exits. End of stdin ends it too.
"""

from __future__ import annotations

import argparse
import json
import math
import select
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from semichat.harness.checker import LEVELS, check_with_pairs
from semichat.harness.events import empty_events, events_frame

# A recipient present this long before the newest event, still without the message: lost so far.
LIVE_GRACE_S = 10.0
# Seconds between two judgements, at least; and the share of one core they may take.
LIVE_INTERVAL_S = 3.0
LIVE_CPU_SHARE = 0.2
FAULTS = ("lost", "duplicated", "reordered", "unexpected")


class EventTail:
    """The complete lines appended to a run's `events/*.jsonl` since the last read."""

    def __init__(self, events_dir: Path) -> None:
        self.events_dir = events_dir
        self.offsets: dict[Path, int] = {}
        self.records: list[dict[str, Any]] = []

    def read(self) -> int:
        added = 0
        for path in sorted(self.events_dir.glob("*.jsonl")):
            start = self.offsets.get(path, 0)
            with path.open("rb") as f:
                f.seek(start)
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next read
            self.offsets[path] = start + end
            for line in chunk[:end].splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the live view skips it; `semichat check` names it
                if isinstance(record, dict) and isinstance(record.get("t"), int | float):
                    self.records.append(record)
                    added += 1
        return added

    def frame(self) -> pd.DataFrame:
        if not self.records:
            return empty_events()
        return events_frame(self.records).sort_values("t", kind="stable", ignore_index=True)


def _pair_key(level: str, table: pd.DataFrame) -> pd.Series:
    unit = table["client"] if level == "user_view" else table["recipient"]
    return table["messageId"].astype(str) + "\x00" + unit.astype(str)


class LiveJudge:
    """What is new in each judgement of a growing record; a pure function of the events given."""

    def __init__(self) -> None:
        self.seen: dict[str, set[str]] = {level: set() for level in LEVELS}
        self.counted: dict[str, dict[str, int]] = {lv: dict.fromkeys(FAULTS, 0) for lv in LEVELS}

    def update(self, events: pd.DataFrame, grace_s: float, final: bool = False) -> dict[str, Any]:
        results, tables = check_with_pairs(events, grace_s=grace_s)
        end = results["run"]["end"]
        latencies: dict[str, list[float]] = {}
        faults: dict[str, dict[str, int]] = {}
        for level in LEVELS:
            table = tables[level]
            delivered = table[table["expected"] & table["latency_ms"].notna()]
            keys = _pair_key(level, delivered)
            fresh = ~keys.isin(self.seen[level])
            self.seen[level].update(keys[fresh])
            latencies[level] = [round(float(v), 3) for v in delivered["latency_ms"][fresh]]
            if not final:
                # Only what later lines cannot undo: a send is recorded once acknowledged, so a
                # recent delivery may still meet its send (no longer unexpected, or reordered).
                settled = end - LIVE_GRACE_S
                lost = table["lost"] & (table["acked_at"] <= settled)
                reordered = table["reordered"] & (table["first_received_at"] <= settled)
                results[level]["lost"] = int(lost.sum())
                results[level]["reordered"] = int(reordered.sum())
                results[level]["unexpected"] = 0  # judged at the end only
            results[level]["pending"] = (
                results[level]["expected"] - results[level]["delivered"] - results[level]["lost"]
            )
            faults[level] = {}
            for name in FAULTS:
                now = int(results[level].get(name, 0))
                if now > self.counted[level][name]:
                    faults[level][name] = now - self.counted[level][name]
                    self.counted[level][name] = now
        return {"latencies": latencies, "faults": faults, "results": _summary(results)}


def _summary(results: dict[str, Any]) -> dict[str, Any]:
    """The figures of the delivery table, JSON-safe (no NaN)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    keep = ("sent", "expected", "delivered", "pending", "lost", "late", "duplicated", "reordered")
    out: dict[str, Any] = {"sends": results["sends"]}
    for level in LEVELS:
        r = results[level]
        out[level] = {k: r.get(k, 0) for k in keep} | {"latency_ms": clean(r["latency_ms"])}
    return out


def _wait_for_command(timeout: float) -> str | None:
    """A line from stdin within `timeout` s ("" at its end), or None."""
    ready, _, _ = select.select([sys.stdin], [], [], max(0.0, timeout))
    if not ready:
        return None
    line = sys.stdin.readline()
    return line.strip() if line else ""


def run(run_dir: Path, grace_s: float) -> int:
    tail = EventTail(run_dir / "events")
    judge = LiveJudge()
    interval = LIVE_INTERVAL_S
    judgements = 0
    while True:
        command = _wait_for_command(interval)
        if command == "":
            return 0
        final = command == "final"
        if (tail.read() or final) and tail.records:
            began = time.process_time()
            update = judge.update(tail.frame(), grace_s, final)
            spent = time.process_time() - began
            judgements += 1
            interval = max(LIVE_INTERVAL_S, spent / LIVE_CPU_SHARE)
            cost = {"judgements": judgements, "cpu_s": round(time.process_time(), 3)}
            print(json.dumps({**update, "final": final, "cost": cost}), flush=True)
        elif final:
            print(json.dumps({"latencies": {}, "faults": {}, "final": True}), flush=True)
        if final:
            return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Judge a run while it is being recorded.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--grace", type=float, default=5.0)
    args = parser.parse_args(argv)
    # Its Locust parent ends it (a line "final", or the end of stdin when the parent dies): a
    # terminal's Ctrl-C, which reaches the whole process group, must not cut the last judgement.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return run(args.run_dir, args.grace)


if __name__ == "__main__":
    sys.exit(main())
