"""Benchmark: a long soak of one server process under chat and reconnect churn; is it flat?

It runs `semichat simulate --scenario reconnect` (in this process, `simulate.simulate`): one
`semichat serve` over the embedded backend (two moto processes, DynamoDB's and SQS's), on
loopback, with `--users` users in conversations of 3 sending every 2 s (on average) while each
stream is cut after a random 2 to 6 s (`--cut-min`, `--cut-max`) and reopened. Meanwhile a
sampler thread reads, every 5 s, the server's `/metrics` and the RSS (psutil) of the server,
the backend processes and Locust. After the run it prints, per minute of the run:

- RSS of the server and of each backend process, in MB (mean of the minute's samples);
- open streams and active long polls (`/metrics`, mean of the minute's samples);
- wire and user-view latency p50/p99 of the pairs first received in that minute: the checker's
  own per-pair records (`per_message_table`, expected pairs delivered), bucketed by their
  `first_received_at`; `pairs` is the wire's count;
- sends ok and unknown per minute (by when the send started, from the clients' records);
- notifications unsettled (`/metrics` `unsettled`: neither deleted nor released, the counter at
  the minute's end) and in flight (received, not yet deleted, released or unsettled).

Minute 1 starts when Locust does (with the users' ramp, about 2 s); the `drain` row is what came
after sending stopped (8 s). A line per minute is printed as the run goes (without latencies,
which are judged from the clients' records at the end), the whole table after it. Then the
flat criteria, PASS, FAIL or SKIP (too short to judge):

1. wire and user-view p99 of the last minute within 25 % (either way) of minute 2's;
2. RSS growth under 1 MB per 10 minutes after minute 5, for the server and for the SQS
   backend: the least-squares slope over the raw samples from minute 5 to the end of sending.
   The DynamoDB backend's slope is printed (INFO, with KB per ok send) but not judged: moto
   keeps every stored message and idempotency record in memory, so it grows with the data;
3. over the whole run, the checker's user view loses and duplicates nothing, and the server's
   final `/metrics` (after its long polls settled) shows no notification unsettled.

Exit 0 when nothing failed, 1 when a criterion failed, 2 when the run could not be judged.
Everything goes to `<out>/soak/<UTC time>/`: `params.json`, `samples.csv` (the raw 5 s
samples), `minutes.csv` and `minutes.json` (the table), `summary.json` (criteria and the
checker's counts), `simulate.log`, and the simulation's own run directory under `reconnect/`
(events, `results.json`, `server_metrics.json`, plots). Every phase is bounded: Locust stops at
its run time, and is terminated if it overruns by 3 minutes.

    python -m benchmarks.soak --minutes 30
    python -m benchmarks.soak --minutes 3 --users 20 --routing sharded --out runs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import psutil

from semichat import processes
from semichat.harness.checker import LEVELS, per_message_table
from semichat.harness.events import OK, SEND, UNKNOWN, read_events
from semichat.harness.server_metrics import get_json
from semichat.harness.simulate import (
    SimulationError,
    SimulationParams,
    run_directory,
    simulate,
)
from semichat.settings import ROUTINGS

SCENARIO = "reconnect"
SAMPLE_S = 5.0
# How long the sampler looks for the server and its backends before it gives up.
DISCOVER_S = 180.0
# Past sending and drain by this much, Locust is terminated (then killed 30 s later).
OVERRUN_S = 180.0
P99_TOLERANCE = 0.25
RSS_FROM_MINUTE = 5
RSS_MB_PER_10_MIN = 1.0
MB = 1 << 20


@dataclass
class Watched:
    """What the sampler watches: the server's URL, the run's start, and processes by role."""

    target: str
    t0: float
    ends: float  # when sending and drain are over (unix time)
    pids: dict[str, int] = field(default_factory=dict)


def _listen_ports(proc: psutil.Process) -> set[int]:
    try:
        conns = proc.net_connections(kind="tcp")
    except psutil.Error:
        return set()
    return {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN}


def discover(sim_root: Path, stopping: threading.Event) -> Watched | None:
    """The simulation's server and backends, once its `params.json` and `backend.json` exist
    (the server is up by then); None if not within `DISCOVER_S` or when told to stop."""
    deadline = time.monotonic() + DISCOVER_S
    run = sim_root / "latest"
    while time.monotonic() < deadline and not stopping.wait(1):
        try:
            params = json.loads((run / "params.json").read_text())
            backend = json.loads((run / "backend.json").read_text())
        except (OSError, ValueError):
            continue  # not written yet, or being written
        watched = watch(params, backend)
        if watched is not None:
            return watched
    return None


def watch(params: dict[str, Any], backend: dict[str, str]) -> Watched | None:
    """Among this process's children, `semichat serve --port P` and each `semichat backend`
    listening on an endpoint's port (DynamoDB's first, then SQS's when split)."""
    t0 = params["load"]["send_until"] - params["duration"]
    watched = Watched(params["target"], t0, t0 + params["load"]["duration"])
    port = str(urlsplit(params["target"]).port)
    roles = {urlsplit(backend["endpoint"]).port: "dynamodb"}
    if backend["sqs_endpoint"] != backend["endpoint"]:
        roles[urlsplit(backend["sqs_endpoint"]).port] = "sqs"
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            cmd = child.cmdline()
            if "serve" in cmd and port in cmd:
                watched.pids["server"] = child.pid
            elif "backend" in cmd:
                for p in _listen_ports(child) & roles.keys():
                    watched.pids[roles[p]] = child.pid
    complete = "server" in watched.pids and len(watched.pids) == 1 + len(roles)
    return watched if complete else None


def _rss_mb(pid: int | None) -> float:
    try:
        return psutil.Process(pid).memory_info().rss / MB if pid else math.nan
    except psutil.Error:
        return math.nan


def _locust_pid() -> int | None:
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if "locust" in child.cmdline():
                return child.pid
    return None


def take_sample(w: Watched) -> dict[str, float]:
    """One raw sample: the run's second, load average, RSS by role, `/metrics` figures."""
    m = get_json(f"{w.target}/metrics", timeout=5)
    sqs = m["sqs"]
    row = {"t": round(m["time"] - w.t0, 2), "load1": os.getloadavg()[0]}
    if "locust" not in w.pids and (pid := _locust_pid()):
        w.pids["locust"] = pid
    for role in ("server", "dynamodb", "sqs", "locust"):
        row[f"rss_{role}_mb"] = round(_rss_mb(w.pids.get(role)), 2)
    for k in ("open_streams", "active_polls", "requests", "messages_received", "unsettled"):
        row[k] = sqs.get(k, 0)
    settled = sqs.get("messages_deleted", 0) + sqs.get("messages_released", 0)
    row["in_flight"] = sqs["messages_received"] - settled - sqs.get("unsettled", 0)
    return row


class Sampler(threading.Thread):
    """Every `SAMPLE_S` seconds, a sample; once a minute, that minute's line on `out`. Stops
    when told, and stops Locust if it runs `OVERRUN_S` past its end."""

    def __init__(self, sim_root: Path, minutes: int, out: TextIO) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        self.sim_root, self.minutes, self.out = sim_root, minutes, out
        self.samples: list[dict[str, float]] = []
        self.watched: Watched | None = None
        self.stopping = threading.Event()
        self.note = ""

    def run(self) -> None:
        try:
            self.sample_until_stopped()
        except Exception as exc:  # the run goes on without its sampler; say so at the end
            self.note = f"the sampler stopped: {type(exc).__name__}: {exc}"

    def sample_until_stopped(self) -> None:
        self.watched = w = discover(self.sim_root, self.stopping)
        if w is None:
            if not self.stopping.is_set():
                self.note = f"server or backend not found within {DISCOVER_S:.0f} s: no samples"
            return
        print(header(), file=self.out, flush=True)
        shown = 0
        # Samples at 2.5, 7.5, ... s into the run: none on a minute's boundary.
        while not self.stopping.wait(SAMPLE_S - (time.time() - w.t0 - SAMPLE_S / 2) % SAMPLE_S):
            self.watchdog(w)
            try:
                self.samples.append(take_sample(w))
            except (OSError, ValueError, KeyError):
                continue  # a missed sample; the server may be stopping
            done = min(int(self.samples[-1]["t"] // 60), self.minutes)
            if done > shown:
                rows = samples_by_minute(pd.DataFrame(self.samples), self.minutes)
                for minute in range(shown + 1, done + 1):
                    row = rows.loc[minute] if minute in rows.index else pd.Series(dtype=float)
                    print(format_row(minute, row), file=self.out, flush=True)
                shown = done

    def watchdog(self, w: Watched) -> None:
        overrun = time.time() - w.ends - OVERRUN_S
        if overrun > 0 and (pid := w.pids.get("locust")):
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if overrun > 30:
                    proc.kill()
                else:
                    proc.terminate()
                self.note = f"Locust overran its run time by {OVERRUN_S:.0f} s and was stopped"


def minute_of(t_rel: np.ndarray, minutes: int) -> np.ndarray:
    """The run's minute (1-based) of seconds since its start; past sending: `minutes + 1`."""
    return np.clip(np.floor(np.asarray(t_rel, dtype=float) / 60).astype(int) + 1, 1, minutes + 1)


def samples_by_minute(samples: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """Per minute: means of load, RSS and gauges; the last value of the settlement counters."""
    by = samples.groupby(minute_of(samples["t"].to_numpy(), minutes))
    means = [c for c in samples.columns if c.startswith(("rss_", "load1", "open_", "active_"))]
    return by[means].mean().join(by[["unsettled", "in_flight", "requests"]].last())


def latency_by_minute(pairs: pd.DataFrame, t0: float, minutes: int, level: str) -> pd.DataFrame:
    """p50/p99 (numpy's linear interpolation, as the checker's) and count of the checker's
    delivered expected pairs, by the minute of their first receipt."""
    got = pairs[pairs["expected"] & (pairs["deliveries"] > 0)]
    by = got["latency_ms"].groupby(minute_of(got["first_received_at"].to_numpy() - t0, minutes))
    return pd.DataFrame(
        {
            f"{level}_p50": by.quantile(0.5),
            f"{level}_p99": by.quantile(0.99),
            f"{level}_n": by.size(),
        }
    )


def sends_by_minute(events: pd.DataFrame, t0: float, minutes: int) -> pd.DataFrame:
    """Sends ok and unknown per minute, by when each send started."""
    sends = events[events["type"] == SEND]
    minute = minute_of(sends["t"].to_numpy() - t0, minutes)
    counts = pd.crosstab(minute, sends["outcome"].to_numpy())
    return counts.reindex(columns=[OK, UNKNOWN], fill_value=0).rename(
        columns={OK: "sends_ok", UNKNOWN: "sends_unknown"}
    )


def minute_table(
    samples: pd.DataFrame, events: pd.DataFrame, grace_s: float, t0: float, minutes: int
) -> pd.DataFrame:
    parts = [samples_by_minute(samples, minutes)] if len(samples) else []
    for level in LEVELS:
        pairs = per_message_table(events, grace_s=grace_s, level=level)
        parts.append(latency_by_minute(pairs, t0, minutes, level))
    parts.append(sends_by_minute(events, t0, minutes))
    table = pd.concat(parts, axis=1).sort_index()
    table.index.name = "minute"
    return table


COLUMNS = [  # (title, column, format)
    ("load", "load1", "{:5.1f}"),
    ("server", "rss_server_mb", "{:7.1f}"),
    ("ddb", "rss_dynamodb_mb", "{:7.1f}"),
    ("sqs", "rss_sqs_mb", "{:7.1f}"),
    ("streams", "open_streams", "{:8.1f}"),
    ("polls", "active_polls", "{:6.1f}"),
    ("wire50", "wire_p50", "{:7.0f}"),
    ("wire99", "wire_p99", "{:7.0f}"),
    ("view50", "user_view_p50", "{:7.0f}"),
    ("view99", "user_view_p99", "{:7.0f}"),
    ("pairs", "wire_n", "{:6.0f}"),
    ("ok", "sends_ok", "{:5.0f}"),
    ("unk", "sends_unknown", "{:4.0f}"),
    ("unsettled", "unsettled", "{:10.0f}"),
    ("inflight", "in_flight", "{:9.0f}"),
]


def header() -> str:
    titles = "".join(f"{t:>{len(fmt.format(0))}}" for t, _, fmt in COLUMNS)
    legend = (
        "server, ddb, sqs: RSS MB of the server and the moto backends; streams, polls: open "
        "(mean);\nwire/view 50/99: latency ms of pairs first received that minute (pairs: on "
        "the wire);\nok, unk: sends started that minute; unsettled, inflight: at the minute's end"
    )
    return f"{legend}\n{'min':>5}{titles}"


def format_row(minute: int | str, row: pd.Series) -> str:
    cells = []
    for _, column, fmt in COLUMNS:
        value = row.get(column, math.nan)
        width = len(fmt.format(0))
        cells.append(f"{'-':>{width}}" if pd.isna(value) else fmt.format(value))
    return f"{minute!s:>5}" + "".join(cells)


def format_table(table: pd.DataFrame, minutes: int) -> str:
    lines = [header()]
    for minute, row in table.iterrows():
        lines.append(format_row("drain" if minute > minutes else int(minute), row))
    return "\n".join(lines)


@dataclass(frozen=True)
class Verdict:
    name: str
    passed: bool | None  # None: the run is too short to judge
    detail: str
    info: bool = False  # reported, never a failure

    @property
    def word(self) -> str:
        if self.info and self.passed is not None:
            return "INFO"
        return {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]

    @property
    def failed(self) -> bool:
        return self.passed is False and not self.info


def p99_flat(table: pd.DataFrame, minutes: int, level: str) -> Verdict:
    """The last sending minute's p99 within `P99_TOLERANCE` of minute 2's."""
    name = f"{level} p99 flat (minute {minutes} within {P99_TOLERANCE:.0%} of minute 2)"
    column = f"{level}_p99"
    if minutes < 3 or column not in table or table[column].reindex([2, minutes]).isna().any():
        return Verdict(name, None, "needs minutes 2 and a later last minute with deliveries")
    first, last = table.at[2, column], table.at[minutes, column]
    change = (last - first) / first if first else math.inf
    return Verdict(
        name, bool(abs(change) <= P99_TOLERANCE), f"{first:.0f} ms -> {last:.0f} ms ({change:+.0%})"
    )


def slope_per_10_min(t_s: np.ndarray, values: np.ndarray) -> float | None:
    """Least-squares slope of `values` against time, per 10 minutes; None with under three
    points or under a minute between the first and the last."""
    t_s, values = np.asarray(t_s, dtype=float), np.asarray(values, dtype=float)
    keep = ~np.isnan(values)
    t_s, values = t_s[keep], values[keep]
    if len(t_s) < 3 or t_s.max() - t_s.min() < 60:
        return None
    return float(np.polyfit(t_s / 600, values, 1)[0])


def rss_window(samples: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """The raw samples from minute `RSS_FROM_MINUTE` to the end of sending."""
    t = samples["t"] if "t" in samples else pd.Series(dtype=float)
    return samples[(t >= (RSS_FROM_MINUTE - 1) * 60) & (t < minutes * 60)]


def rss_flat(
    samples: pd.DataFrame, minutes: int, role: str, sends_per_10_min: float = 0.0
) -> Verdict:
    """RSS growing under `RSS_MB_PER_10_MIN` from minute 5 to the end of sending. For the
    DynamoDB backend, which holds every stored message, only reported (`info`), with the
    growth per ok send."""
    who = role if role == "server" else f"{role} backend"
    title = f"{who} RSS growth < {RSS_MB_PER_10_MIN:g} MB / 10 min after minute {RSS_FROM_MINUTE}"
    info = role == "dynamodb"
    window = rss_window(samples, minutes)
    column = f"rss_{role}_mb"
    rss = window[column].to_numpy() if column in window else np.array([])
    slope = slope_per_10_min(window["t"].to_numpy(), rss) if len(rss) else None
    if slope is None:
        why = f"needs samples over a minute or more after minute {RSS_FROM_MINUTE}"
        return Verdict(title, None, why, info)
    detail = f"{slope:+.2f} MB / 10 min over {len(rss)} samples, {rss[0]:.1f} -> {rss[-1]:.1f} MB"
    if info and sends_per_10_min:
        detail += (
            f"; {slope * 1024 / sends_per_10_min:.2f} KB per ok send (it stores every message; "
            "not judged)"
        )
    return Verdict(title, bool(slope < RSS_MB_PER_10_MIN), detail, info)


def nothing_lost(results: dict[str, Any], after: dict[str, Any]) -> Verdict:
    """The checker's user view over the whole run, and the server's settled counters."""
    view = results["user_view"]
    sqs = after.get("sqs", {})
    held = (
        sqs.get("messages_received", 0)
        - sqs.get("messages_deleted", 0)
        - sqs.get("messages_released", 0)
        - sqs.get("unsettled", 0)
    )
    bad = view["lost"] + view["duplicated"] + sqs.get("unsettled", 0)
    detail = (
        f"user view: {view['lost']} lost, {view['duplicated']} duplicated of {view['expected']} "
        f"expected ({view['reordered']} reordered, {view['unexpected']} unexpected); server: "
        f"{sqs.get('messages_received', 0)} received, {sqs.get('unsettled', 0)} unsettled, "
        f"{held} still held at the end; wire: {results['wire']['lost']} lost"
    )
    return Verdict("nothing lost, duplicated in view or unsettled", bool(bad == 0), detail)


def verdicts(
    table: pd.DataFrame, samples: pd.DataFrame, minutes: int, results: dict[str, Any], after: Any
) -> list[Verdict]:
    sending = table.loc[RSS_FROM_MINUTE:minutes, "sends_ok"] if "sends_ok" in table else []
    sends_per_10_min = 10 * float(np.mean(sending)) if len(sending) else 0.0
    return [
        *(p99_flat(table, minutes, level) for level in LEVELS),
        *(rss_flat(samples, minutes, role) for role in ("server", "sqs")),
        rss_flat(samples, minutes, "dynamodb", sends_per_10_min),
        nothing_lost(results, after),
    ]


def git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode().strip() or None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=30, help="minutes of sending (default 30)")
    parser.add_argument("--users", type=int, default=20, help="simulated users (default 20)")
    parser.add_argument("--routing", choices=ROUTINGS, default="per_user_queue")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="writes <out>/soak/<time>/")
    parser.add_argument("--cut-min", type=float, help="cut streams after at least S s (2)")
    parser.add_argument("--cut-max", type=float, help="cut streams after at most S s (6)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    soak_dir = run_directory(args.out, "soak")
    (soak_dir / "events").rmdir()  # the simulation keeps its events in its own directory
    knobs = {k: v for k, v in (("cut_min", args.cut_min), ("cut_max", args.cut_max)) if v}
    params = SimulationParams.for_scenario(
        SCENARIO, knobs, users=args.users, duration=args.minutes * 60.0, routing=args.routing
    )
    soak_params = {
        "minutes": args.minutes,
        "users": args.users,
        "routing": args.routing,
        "scenario": SCENARIO,
        "cut": [params.load.cut_min, params.load.cut_max],
        "sample_s": SAMPLE_S,
        "criteria": {
            "p99_tolerance": P99_TOLERANCE,
            "rss_from_minute": RSS_FROM_MINUTE,
            "rss_mb_per_10_min": RSS_MB_PER_10_MIN,
        },
        "commit": git_commit(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg()[0],
    }
    (soak_dir / "params.json").write_text(json.dumps(soak_params, indent=2) + "\n")
    print(
        f"soak: {args.users} users, {args.minutes} min of chat with streams cut every "
        f"{params.load.cut_min:g} to {params.load.cut_max:g} s, routing {args.routing}, one "
        f"server process; load average {os.getloadavg()[0]:.2f}; run directory {soak_dir}",
        flush=True,
    )
    sampler = Sampler(soak_dir / SCENARIO, args.minutes, out)
    sampler.start()
    try:
        with (soak_dir / "simulate.log").open("w") as log, contextlib.redirect_stdout(log):
            sim_dir, results = simulate(params, soak_dir)
    except SimulationError as exc:
        print(f"FAIL: {exc} (see {soak_dir / 'simulate.log'})", file=sys.stderr)
        return 2
    finally:
        sampler.stopping.set()
        sampler.join(SAMPLE_S + 15)
    if sampler.note:
        print(f"note: {sampler.note}")
    return report(soak_dir, sim_dir, results, sampler, args.minutes)


def report(
    soak_dir: Path, sim_dir: Path, results: dict[str, Any], sampler: Sampler, minutes: int
) -> int:
    samples = pd.DataFrame(sampler.samples)
    samples.to_csv(soak_dir / "samples.csv", index=False)
    params = json.loads((sim_dir / "params.json").read_text())
    t0 = params["load"]["send_until"] - params["duration"]
    events = read_events(sim_dir / "events")
    table = minute_table(samples, events, float(params["grace"]), t0, minutes)
    table.to_csv(soak_dir / "minutes.csv")
    (soak_dir / "minutes.json").write_text(table.reset_index().to_json(orient="records", indent=2))
    after = json.loads((sim_dir / "server_metrics.json").read_text())["after"]
    judged = verdicts(table, samples, minutes, results, after)
    print("\nper minute of the run (final):")
    print(format_table(table, minutes))
    sends = results["sends"]
    print(
        f"sends over the whole run (checker): {sends['attempted']} attempted, {sends['ok']} ok, "
        f"{sends['failed']} failed, {sends['unknown']} unknown\n"
    )
    for v in judged:
        print(f"{v.word}  {v.name}: {v.detail}")
    summary = {
        "verdicts": [{**asdict(v), "word": v.word} for v in judged],
        "sends": results["sends"],
        **{
            level: {k: v for k, v in results[level].items() if k != "lost_examples"}
            for level in LEVELS
        },
        "simulation": str(sim_dir),
        "note": sampler.note,
    }
    (soak_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    print(f"run directory: {soak_dir} (simulation: {sim_dir})")
    return 1 if any(v.failed for v in judged) else 0


def main() -> None:
    args = parse_args()
    processes.unwind_on_sigterm()
    sys.exit(run(args))


if __name__ == "__main__":
    main()
