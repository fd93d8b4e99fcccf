"""`semichat sweep`: the cross product of strategies, fault presets and user counts, repeated.

A sweep is a directory: `sweep.json` (its parameters), `runs/<cell>/` (one `semichat simulate`
run directory per cell and repeat, each judged on its own), `summary.csv` (one row per run) and
`cells.jsonl` (each cell's command, exit status and duration, written as it finishes, so a sweep
cut short still says what it did). Each cell runs `semichat simulate` in a process of its own: a
cell that fails or hangs is marked and the sweep goes on.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

NO_FAULTS = "none"
LEVELS = ("wire", "user_view")
COUNTS = ("lost", "duplicated", "reordered", "late", "delivered", "expected")
QUANTILES = ("p50", "p95", "p99")


@dataclass(frozen=True)
class Cell:
    routing: str
    faults: str
    users: int
    repeat: int

    @property
    def name(self) -> str:
        return f"{self.routing}-{self.faults}-u{self.users}-r{self.repeat}".replace("=", "")


@dataclass(frozen=True)
class SweepParams:
    scenario: str
    routings: tuple[str, ...]
    faults: tuple[str, ...]
    users: tuple[int, ...]
    repeat: int
    duration: float
    # Further `semichat simulate` flags, passed to every cell as given.
    simulate_args: tuple[str, ...] = field(default_factory=tuple)
    # A cell that runs longer than this (seconds) is stopped and marked failed.
    cell_timeout: float = 900.0
    # Keep only what the summary and notebooks read (parameters, results, server metrics):
    # a sweep to commit, without the raw events that would re-judge it.
    prune: bool = False

    def cells(self) -> list[Cell]:
        product = itertools.product(self.routings, self.faults, self.users, range(self.repeat))
        return [Cell(r, f, u, k + 1) for r, f, u, k in product]


def cell_command(params: SweepParams, cell: Cell, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "semichat", "simulate", "--scenario", params.scenario]
    cmd += ["--users", str(cell.users), "--duration", str(params.duration)]
    cmd += ["--routing", cell.routing, "--out", str(out)]
    if cell.faults != NO_FAULTS:
        cmd += ["--faults", cell.faults]
    return cmd + list(params.simulate_args)


def run_cell(params: SweepParams, cell: Cell, sweep_dir: Path) -> dict[str, Any]:
    """Run one cell; its record says how it ended, whatever happened."""
    out = sweep_dir / "runs" / cell.name
    out.mkdir(parents=True, exist_ok=True)
    cmd = cell_command(params, cell, out)
    started = time.monotonic()
    with (out / "simulate.out").open("wb") as log:
        try:
            code = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, timeout=params.cell_timeout
            ).returncode
        except subprocess.TimeoutExpired:
            code = -1
    latest = out / params.scenario / "latest"
    return {
        **asdict(cell),
        "cell": cell.name,
        "exit": code,
        "seconds": round(time.monotonic() - started, 1),
        "run_dir": str(latest.resolve().relative_to(sweep_dir.resolve()))
        if latest.exists()
        else None,
        "command": cmd,
    }


def sweep(params: SweepParams, sweep_dir: Path, *, echo: bool = True) -> pd.DataFrame:
    """Run every cell in turn, then write and return the summary (one row per run)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "sweep.json").write_text(json.dumps(asdict(params), indent=2) + "\n")
    cells = params.cells()
    with (sweep_dir / "cells.jsonl").open("a") as journal:
        for i, cell in enumerate(cells, 1):
            if echo:
                print(f"[{i}/{len(cells)}] {cell.name} ...", end=" ", flush=True)
            record = run_cell(params, cell, sweep_dir)
            # A failed run keeps its logs: they say why.
            if params.prune and record["run_dir"] and record["exit"] == 0:
                prune_run(sweep_dir / record["run_dir"])
            journal.write(json.dumps(record) + "\n")
            journal.flush()
            if echo:
                print(_progress(record, sweep_dir), flush=True)
    summary = summarise(sweep_dir)
    summary.to_csv(sweep_dir / "summary.csv", index=False)
    return summary


KEPT = ("params.json", "results.json", "server_metrics.json", "provisioning.json")


def prune_run(run_dir: Path) -> None:
    """Delete a judged run's raw record (events, Locust's files, logs, plots), keeping `KEPT`."""
    import shutil

    for item in run_dir.iterdir():
        if item.name in KEPT:
            continue
        if item.is_dir():
            shutil.rmtree(item)
        else:
            item.unlink()


def _progress(record: dict[str, Any], sweep_dir: Path) -> str:
    status = "ok" if record["exit"] == 0 else f"FAILED (exit {record['exit']})"
    if record["run_dir"] is None:
        return f"{status} in {record['seconds']} s, no run directory"
    results = _read_json(sweep_dir / record["run_dir"] / "results.json")
    if not results:
        return f"{status} in {record['seconds']} s, not judged"
    view, wire = results["user_view"], results["wire"]
    return (
        f"{status} in {record['seconds']} s: view lost {view['lost']}, "
        f"wire lost {wire['lost']} dup {wire['duplicated']} reordered {wire['reordered']}"
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def cell_records(sweep_dir: Path) -> Iterator[dict[str, Any]]:
    """Each cell's record; a cell run twice (a resumed sweep) counts by its last record."""
    path = Path(sweep_dir) / "cells.jsonl"
    records: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            records[record["cell"]] = record
    yield from records.values()


def summary_row(record: dict[str, Any], sweep_dir: Path) -> dict[str, Any]:
    """One run's figures: parameters, both levels' anomalies and latency, SQS cost, faults."""
    row: dict[str, Any] = {k: record[k] for k in ("routing", "faults", "users", "repeat")}
    row |= {"cell": record["cell"], "exit": record["exit"], "ok": record["exit"] == 0}
    run = Path(sweep_dir) / record["run_dir"] if record.get("run_dir") else None
    results = _read_json(run / "results.json") if run else {}
    row["judged"] = bool(results)
    if not results:
        return row
    for level in LEVELS:
        r = results[level]
        tag = "view" if level == "user_view" else "wire"
        row |= {f"{tag}_{k}": r.get(k) for k in COUNTS}
        row |= {f"{tag}_{q}_ms": r["latency_ms"].get(q) for q in QUANTILES}
    row |= _sqs_columns(results)
    faults = results.get("faults") or {}
    row["faults_injected"] = sum((faults.get("injected") or {}).values()) if faults else 0
    # What botocore retried beneath the server, and the errors it gave up on (to the app).
    botocore = results.get("botocore") or {}
    row["botocore_retries"] = sum((botocore.get("retries") or {}).values())
    row["botocore_errors"] = sum((botocore.get("errors") or {}).values())
    return row


def _sqs_columns(results: dict[str, Any]) -> dict[str, Any]:
    sqs = results.get("sqs") or {}
    requests = sqs.get("requests") or {}
    sent = results.get("wire", {}).get("sent") or 0
    total = requests.get("requests")
    return {
        "sends_ok": results.get("sends", {}).get("ok"),
        "sends_unknown": results.get("sends", {}).get("unknown"),
        "sqs_requests": total,
        "sqs_per_message": round(total / sent, 2) if total is not None and sent else None,
        "sqs_per_user_minute": sqs.get("per_user_minute"),
        # Per open stream per minute while every stream was open (away from ramp and drain).
        "sqs_per_stream_minute_steady": (sqs.get("steady") or {}).get("per_stream_minute"),
        "queues_created": requests.get("create_queue"),
    }


def summarise(sweep_dir: str | Path) -> pd.DataFrame:
    """`summary.csv`'s rows, computed afresh from the cells' records and results."""
    rows = [summary_row(r, Path(sweep_dir)) for r in cell_records(Path(sweep_dir))]
    return pd.DataFrame(rows)


def print_table(summary: pd.DataFrame) -> str:
    columns = [c for c in SUMMARY_COLUMNS if c in summary.columns]
    with pd.option_context("display.width", 200, "display.max_columns", 40):
        return summary[columns].to_string(index=False)


SUMMARY_COLUMNS = (
    "routing",
    "faults",
    "users",
    "repeat",
    "ok",
    "view_lost",
    "view_duplicated",
    "view_reordered",
    "wire_lost",
    "wire_duplicated",
    "wire_reordered",
    "view_p50_ms",
    "view_p99_ms",
    "sqs_per_message",
    "sqs_per_user_minute",
    "sqs_per_stream_minute_steady",
    "faults_injected",
    "botocore_retries",
)
