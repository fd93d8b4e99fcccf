"""The harness's subcommands: `semichat simulate`, `semichat sweep` and `semichat worker`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semichat.cli.flags import UserError, add_faults_flag, add_routing_flags
from semichat.cli.help import add_command
from semichat.settings import BACKENDS, Settings

# Knobs of `LoadConfig` that `simulate` passes to the scenario only when given on the command line.
SIMULATE_KNOBS = ("conversation_size", "send_interval", "tabs", "cut_min", "cut_max", "active")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for add in (add_simulate, add_check, add_sweep, add_worker):
        add(sub)


def add_check(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "check")
    p.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="a run directory, or a folder whose `latest` is one (runs/adhoc)",
    )
    p.add_argument(
        "--drop-truncated",
        action="store_true",
        help="judge the run without a truncated last line (what a writer killed mid-line "
        "leaves), instead of refusing it",
    )
    p.set_defaults(func=check_command)


def check_command(args: argparse.Namespace) -> int:
    from semichat.harness.verdict import check_run

    return check_run(args.run_dir, args.drop_truncated)


def add_simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from semichat.harness.scenarios import scenario_names

    p = add_command(sub, "simulate")
    p.add_argument("--scenario", choices=scenario_names(), default="chat", help="what the users do")
    p.add_argument("--users", type=int, default=10, help="simulated users (default 10)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of sending (default 30)")
    p.add_argument(
        "--backend", choices=BACKENDS, default="embedded", help="backend of the started server"
    )
    p.add_argument("--target", help="URL of an already running server; none is started")
    p.add_argument("--out", default="runs", help="folder of run directories (default runs)")
    p.add_argument(
        "--spawn-rate",
        type=float,
        default=0.0,
        help="users started per second (default 0: all within about two seconds)",
    )
    p.add_argument("--processes", type=int, default=1, help="Locust worker processes (default 1)")
    p.add_argument(
        "--server-processes",
        type=int,
        default=1,
        help="server processes on one port (`serve --processes N`); with --target, how many the "
        "target runs, so that /metrics is summed over them (default 1)",
    )
    p.add_argument(
        "--split-backend",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="embedded backend: DynamoDB and SQS in a process each (default: it keeps up "
        "with more users), or both in one (--no-split-backend)",
    )
    p.add_argument(
        "--drain",
        type=float,
        default=8.0,
        help="seconds of listening after sending stops (default 8)",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=5.0,
        help="seconds before the run's end after which a recipient's arrival no longer makes "
        "a delivery expected (default 5)",
    )
    p.add_argument("--conversation-size", type=int, help="users per conversation")
    p.add_argument("--send-interval", type=float, help="mean seconds between a user's sends")
    p.add_argument("--tabs", type=int, help="streams (tabs) per user, each with its own view")
    p.add_argument("--cut-min", type=float, help="cut streams after at least this many seconds")
    p.add_argument("--cut-max", type=float, help="cut streams after at most this many seconds")
    p.add_argument("--active", type=int, help="scenario idle: how many of the users chat (0: none)")
    add_routing_flags(p)
    add_faults_flag(p)
    p.add_argument(
        "--expect-workers",
        type=int,
        default=0,
        help="be a Locust master: wait for this many `semichat worker`s, which ship their "
        "events here (default 0: run Locust here)",
    )
    p.add_argument(
        "--web",
        action="store_true",
        help="open Locust's web UI (http://127.0.0.1:8089 by default) instead of a headless "
        "run: start and stop the test there, watch its Delivery tab, then press Ctrl-C here "
        "to judge the run",
    )
    p.add_argument("--web-port", type=int, default=8089, help="the web UI's port (default 8089)")
    p.add_argument(
        "--live-delivery",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="delivery figures in Locust's own statistics while the run goes on (default); "
        "--no-live-delivery spares the CPU they take",
    )
    p.add_argument("--master-bind-host", default="127.0.0.1", help="the master's address")
    p.add_argument("--master-bind-port", type=int, default=5557, help="the master's port (5557)")
    p.set_defaults(func=simulate_command)


def add_worker(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from semichat.harness.scenarios import scenario_names

    p = add_command(sub, "worker")
    p.add_argument("--master-host", required=True, help="address of the simulate master")
    p.add_argument("--master-port", type=int, default=5557, help="its port (default 5557)")
    p.add_argument(
        "--scenario",
        choices=scenario_names(),
        help="run this shipped scenario (default: the file the master sends)",
    )
    p.set_defaults(func=worker_command)


def add_sweep(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from semichat.harness.scenarios import scenario_names

    p = add_command(sub, "sweep")
    p.add_argument("--scenario", choices=scenario_names(), default="chat", help="what users do")
    p.add_argument("--routing", default="per_user_queue", help="comma-separated routing strategies")
    p.add_argument(
        "--faults",
        action="append",
        help="comma-separated fault presets (none, sqs, ...); repeat the flag for a spec with "
        "its own commas, e.g. --faults none --faults duplicate=0.05,seed=7 (default none)",
    )
    p.add_argument("--users", default="10", help="comma-separated user counts (default 10)")
    p.add_argument("--repeat", type=int, default=1, help="runs per cell (default 1)")
    p.add_argument("--duration", type=float, default=15.0, help="seconds of sending per run")
    p.add_argument("--out", type=Path, help="the sweep directory (default runs/sweeps/<UTC time>)")
    p.add_argument(
        "--cell-timeout",
        type=float,
        default=900.0,
        help="seconds after which a run is stopped and marked failed (default 900)",
    )
    p.add_argument(
        "--prune",
        action="store_true",
        help="keep only each run's params, results and server metrics (a sweep to commit)",
    )
    p.add_argument(
        "simulate_args",
        nargs=argparse.REMAINDER,
        help="after --: further `semichat simulate` flags for every run, e.g. -- --drain 5",
    )
    p.set_defaults(func=sweep_command)


def simulate_command(args: argparse.Namespace) -> int:
    from semichat.harness.simulate import SimulationParams, run_simulation
    from semichat.server.faults import FaultSpec

    faults = args.faults if args.faults is not None else Settings.from_env().faults
    FaultSpec.parse(faults)  # a bad spec is refused before anything starts
    if args.target and FaultSpec.parse(faults).crash:
        raise UserError("--faults crash=S needs a server started here: drop --target")
    if args.expect_workers and args.processes > 1:
        raise UserError("--processes forks local workers: not with --expect-workers")
    knobs = {k: getattr(args, k) for k in SIMULATE_KNOBS if getattr(args, k) is not None}
    env = Settings.from_env()
    params = SimulationParams.for_scenario(
        args.scenario,
        knobs,
        users=args.users,
        duration=args.duration,
        backend=args.backend,
        target=args.target,
        spawn_rate=args.spawn_rate,
        processes=args.processes,
        drain=args.drain,
        grace=args.grace,
        routing=args.routing or env.routing,
        shards=args.shards or env.shards,
        faults=faults,
        server_processes=args.server_processes,
        split_backend=args.split_backend,
        expect_workers=args.expect_workers,
        master_bind_host=args.master_bind_host,
        master_bind_port=args.master_bind_port,
        web_port=args.web_port if args.web else None,
        live_delivery=args.live_delivery,
    )
    return run_simulation(params, Path(args.out))


def worker_command(args: argparse.Namespace) -> int:
    from semichat.harness.worker import run_worker

    return run_worker(args.master_host, args.master_port, args.scenario)


def sweep_command(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from semichat.harness.sweep import SweepParams, print_table, sweep

    fault_specs: list[str] = []
    for value in args.faults or ["none"]:
        fault_specs += [value] if "=" in value else value.split(",")
    extra = [a for a in args.simulate_args if a != "--"]
    params = SweepParams(
        scenario=args.scenario,
        routings=tuple(_csv(args.routing)),
        faults=tuple(f.strip() for f in fault_specs if f.strip()),
        users=tuple(int(u) for u in _csv(args.users)),
        repeat=args.repeat,
        duration=args.duration,
        simulate_args=tuple(extra),
        cell_timeout=args.cell_timeout,
        prune=args.prune,
    )
    out = args.out or Path("runs/sweeps") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    summary = sweep(params, out)
    print(print_table(summary))
    print(f"sweep directory: {out} (summary.csv)")
    failed = int((~summary["ok"]).sum()) if len(summary) else 0
    if failed:
        print(f"FAIL: {failed} of {len(summary)} run(s) failed; see cells.jsonl", file=sys.stderr)
    return 1 if failed else 0


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]
