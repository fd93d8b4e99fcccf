"""`semichat simulate`: one run of the harness, from parameters to a verdict.

A run is a directory `runs/<scenario>/<UTC time>/` holding `params.json`, the raw client events
(`events/*.jsonl`), Locust's own stats and log, the server's SQS request counters before and
after, `results.json` from the checker, and plots. `runs/<scenario>/latest` points at the newest.
"""

from __future__ import annotations

import functools
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from semichat import ports
from semichat.harness.loadgen.config import LoadConfig
from semichat.harness.loadgen.recorder import Recorder
from semichat.harness.scenarios import scenario_file, scenario_knobs
from semichat.harness.server_metrics import fleet_metrics
from semichat.harness.server_process import ServerProcess, ServerStartError, stop_process

# Seconds between two samples of the target's /metrics during a run.
METRICS_SAMPLE_TICKS = 5
# How long a master waits for its workers to connect before it gives up.
WORKERS_WAIT_S = 300
# Long enough for the longest long poll (20 s) to return after its client left.
SETTLE_TIMEOUT_S = 25.0


@dataclass(frozen=True)
class SimulationParams:
    scenario: str
    users: int
    duration: float
    backend: str = "embedded"
    target: str | None = None
    spawn_rate: float = 0.0  # 0: all users within about two seconds
    processes: int = 1
    drain: float = 8.0
    grace: float = 5.0
    # The server's notification routing (passed to the server started here; with --target,
    # what the target is said to run).
    routing: str = "per_user_queue"
    shards: int = 4
    # The nemesis's spec (`semichat/server/faults/nemesis.py`): passed to the server, `crash`
    # done here.
    faults: str = ""
    # Server processes on the target's port (`serve --processes N`): started so here, and /metrics
    # is read from each of them and summed (`server_metrics.py`).
    server_processes: int = 1
    # The embedded backend as two moto processes, DynamoDB's and SQS's: one process serves every
    # request under one GIL, and at 100 active users it was the bottleneck (README, Performance).
    split_backend: bool = True
    # Locust master waiting for this many workers (`semichat worker`, any machine; 0: none),
    # on this address and port.
    expect_workers: int = 0
    master_bind_host: str = "127.0.0.1"
    master_bind_port: int = 5557
    load: LoadConfig = field(default_factory=LoadConfig)

    @classmethod
    def for_scenario(cls, scenario: str, knobs: dict[str, Any], **params: Any) -> SimulationParams:
        """The scenario's own knobs (its `KNOBS`), overridden by `knobs` from the command line."""
        load = replace(LoadConfig(), **{**scenario_knobs(scenario), **knobs})
        return cls(scenario=scenario, load=load, **params)

    def to_json(self) -> dict[str, Any]:
        from semichat.server.faults import FaultSpec

        spec = FaultSpec.parse(self.faults)
        return {**asdict(self), "fault_spec": {**spec.active, "seed": spec.seed}}


class SimulationError(Exception):
    """A run that cannot be judged: no load ran, or the target never answered."""


def run_directory(out: Path, scenario: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    path = out / scenario / stamp
    suffix = 0
    while path.exists():
        suffix += 1
        path = out / scenario / f"{stamp}-{suffix}"
    (path / "events").mkdir(parents=True)
    latest = out / scenario / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(path.name)
    return path


def simulated_users(params: SimulationParams, run_tag: str) -> list[str]:
    """The user ids the Locust processes will use (`ChatUser.identity_of`): Locust spreads
    users evenly, so each process numbers at most ceil(users / processes) of them."""
    processes = max(1, params.processes, params.expect_workers)
    per_process = -(-params.users // processes)
    return [f"{run_tag}-w{w}-u{i}" for w in range(processes) for i in range(per_process)]


def provision_ahead(
    params: SimulationParams,
    run_tag: str,
    run_dir: Path,
    endpoint: str | None,
    sqs_endpoint: str | None = None,
) -> None:
    """With routing `preprovisioned`, create the users' queues before the server starts, as
    an operator would, and write how long that took to `provisioning.json`."""
    if params.routing != "preprovisioned" or params.target:
        return
    import asyncio

    from semichat.server.provisioning import provision
    from semichat.settings import Settings

    settings = Settings.from_env().with_overrides(
        backend=params.backend,
        routing=params.routing,
        endpoint_url=endpoint,
        sqs_endpoint=sqs_endpoint,
    )
    users = simulated_users(params, run_tag)
    began = time.monotonic()
    asyncio.run(_provision(settings, users, provision))
    seconds = time.monotonic() - began
    report = {"routing": params.routing, "users": len(users), "seconds": round(seconds, 3)}
    (run_dir / "provisioning.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"  provisioned {len(users)} users' queues in {seconds:.1f} s")


async def _provision(settings: Any, users: list[str], provision: Any) -> None:
    from semichat.backends import with_backend

    async with with_backend(settings) as resolved:
        await provision(resolved, users)


def locust_command(params: SimulationParams, target: str, run_dir: Path) -> list[str]:
    spawn_rate = params.spawn_rate or max(1.0, params.users / 2)
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(scenario_file(params.scenario)),
        "--headless",
        "--host",
        target,
        "--csv",
        str(run_dir / "locust"),
        "--csv-full-history",
        "--stop-timeout",
        "10",
        "--loglevel",
        "WARNING",
        "--logfile",
        str(run_dir / "locust.log"),
        "--only-summary",
        # Request failures are the checker's to judge; a non-zero exit means Locust itself failed.
        "--exit-code-on-error",
        "0",
    ]
    if params.scenario != "queue_ramp":  # the ramp's own shape decides users and length
        cmd += ["-u", str(params.users), "-r", str(spawn_rate)]
        cmd += ["-t", f"{int(params.duration + params.drain)}s"]
    if params.processes > 1:
        # Locust's own workers find their master at 5557 unless told: two runs at once would
        # meet there. A port outside the ephemeral range, which no connection takes by itself.
        port = str(ports.unused_fixed_port())
        cmd += ["--processes", str(params.processes), "--master-bind-port", port]
        cmd += ["--master-port", port]
    if params.expect_workers:
        from semichat.harness.loadgen.config import load_option

        cmd += ["--master", "--expect-workers", str(params.expect_workers)]
        cmd += ["--master-bind-host", params.master_bind_host]
        cmd += ["--master-bind-port", str(params.master_bind_port)]
        cmd += ["--expect-workers-max-wait", str(WORKERS_WAIT_S)]
        cmd += ["--semichat-load", load_option(params.load, params.duration)]
    return cmd


def _count_events(events_dir: Path) -> int:
    total = 0
    for path in events_dir.glob("*.jsonl"):
        with path.open("rb") as f:
            total += sum(
                chunk.count(b"\n") for chunk in iter(functools.partial(f.read, 1 << 16), b"")
            )
    return total


def run_locust(
    params: SimulationParams,
    target: str,
    run_dir: Path,
    started: float,
    samples: list[Any] | None = None,
    on_tick: Callable[[float], None] = lambda elapsed: None,
) -> int:
    """Run Locust to its end; every few seconds append the target's `/metrics` to `samples`
    (the steady-state cost is measured from them, away from the ramp and the drain)."""
    env = {**os.environ, **params.load.to_env()}
    total = params.duration + params.drain
    with (run_dir / "locust.out").open("wb") as out:
        proc = subprocess.Popen(
            locust_command(params, target, run_dir), env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            # On a terminal one line updates in place; in a log, a line every few seconds.
            tty = sys.stdout.isatty()
            ticks = 0
            while proc.poll() is None:
                elapsed = time.time() - started
                phase = "sending" if elapsed < params.duration else "draining"
                if tty or ticks % 5 == 0:
                    lead = "\r" if tty else ""
                    print(
                        f"{lead}  {elapsed:5.0f}/{total:.0f} s  {phase:9}  "
                        f"events recorded: {_count_events(run_dir / 'events'):>8}",
                        end="" if tty else "\n",
                        flush=True,
                    )
                if samples is not None and ticks % METRICS_SAMPLE_TICKS == 0:
                    try:
                        samples.append(fleet_metrics(target, params.server_processes))
                    except (OSError, ValueError):
                        pass  # one missed sample only narrows the window
                ticks += 1
                on_tick(elapsed)
                time.sleep(1)
            if tty:
                print()
        finally:
            # Bounded: Locust stops itself at -t, and is stopped here if it overruns.
            if proc.poll() is None:
                stop_process(proc)  # type: ignore[arg-type]
    return int(proc.returncode or 0)


@contextmanager
def started_server(
    params: SimulationParams, run_dir: Path, run_tag: str
) -> Iterator[ServerProcess | None]:
    """The server to load (None with `--target`). The embedded backend runs in a process of
    its own, so that the server can crash and come back over the same queues and tables."""
    if params.target:
        yield None
        return
    from semichat.emulator.backend import start_backend_process, stop_backend_process

    backends, endpoint, sqs_endpoint = [], None, None
    if params.backend == "embedded":
        with (run_dir / "backend.log").open("wb") as log:
            backend, endpoint = start_backend_process(stderr=log)
            backends.append(backend)
            sqs_endpoint = endpoint
            if params.split_backend:
                backend, sqs_endpoint = start_backend_process(stderr=log)
                backends.append(backend)
        (run_dir / "backend.json").write_text(
            json.dumps({"endpoint": endpoint, "sqs_endpoint": sqs_endpoint}) + "\n"
        )
    provision_ahead(params, run_tag, run_dir, endpoint, sqs_endpoint)
    server_args = ["--routing", params.routing, "--shards", str(params.shards)]
    if sqs_endpoint is not None and sqs_endpoint != endpoint:
        server_args += ["--sqs-endpoint", sqs_endpoint]
    if params.server_processes > 1:
        server_args += ["--processes", str(params.server_processes)]
    server = ServerProcess(params.backend, run_dir, params.faults, endpoint, server_args)
    server.processes = params.server_processes
    try:
        try:
            server.start()
        except ServerStartError as exc:
            raise SimulationError(str(exc)) from None
        yield server
    finally:
        server.stop()
        for backend in backends:
            stop_backend_process(backend)


def crash_schedule(
    params: SimulationParams, server: ServerProcess | None
) -> Callable[[float], None]:
    """The nemesis's `crash=S`: a tick function that kills and restarts the server once, about
    S s (+-10 %) into the run."""
    from semichat.server.faults import FaultSpec

    spec = FaultSpec.parse(params.faults)
    if not spec.crash or server is None:
        return lambda elapsed: None
    at = spec.crash * random.Random(spec.seed).uniform(0.9, 1.1)
    crashes: list[float] = []

    def tick(elapsed: float) -> None:
        if not crashes and elapsed >= at:
            crashes.append(server.crash())
            print(f"  nemesis: server killed at {elapsed:.1f} s, back {crashes[0]:.1f} s later")

    return tick


def settled_metrics(target: str, processes: int = 1, timeout: float = SETTLE_TIMEOUT_S) -> Any:
    """The target's `/metrics` once every notification its streams received is deleted,
    released or counted unsettled: the clients have gone, but long polls they left behind
    return (and are settled) only within SQS's 20 s wait. Bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        metrics = target_metrics(target, processes)
        sqs = metrics["sqs"]
        settled = sqs.get("messages_deleted", 0) + sqs.get("messages_released", 0)
        if settled + sqs.get("unsettled", 0) >= sqs["messages_received"]:
            return metrics
        if time.monotonic() >= deadline:
            return metrics
        time.sleep(0.5)


def target_metrics(target: str, processes: int = 1) -> Any:
    """The target's `/metrics` (summed over its processes), or a SimulationError saying it
    cannot be reached."""
    try:
        return fleet_metrics(target, processes)
    except (OSError, ValueError) as exc:
        raise SimulationError(
            f"the target {target} does not answer /metrics ({exc}); is `semichat serve` "
            "running there?"
        ) from None


def simulate(params: SimulationParams, out: Path) -> tuple[Path, dict[str, Any]]:
    """Run the load against the target (or a server started here) and judge it.

    Raises SimulationError when there is nothing to judge: the target never answered, Locust
    failed, or no user attempted a send."""
    from semichat.harness.report import write_report

    if params.target:
        # fail before making a run directory
        target_metrics(params.target.rstrip("/"), params.server_processes)
    run_dir = run_directory(out, params.scenario)
    markers = Recorder(run_dir / "events")
    run_tag = params.load.run_tag + "-" + run_dir.name.replace("T", "").rstrip("Z")[-10:]
    try:
        with started_server(params, run_dir, run_tag) as server:
            target = server.target if server else str(params.target).rstrip("/")
            started = time.time()
            load = replace(
                params.load,
                run_dir=str(run_dir),
                run_tag=run_tag,
                send_until=started + params.duration,
                users=params.users,
                duration=params.duration + params.drain,
            )
            params = replace(params, load=load, target=target)
            (run_dir / "params.json").write_text(json.dumps(params.to_json(), indent=2) + "\n")
            before = target_metrics(target, params.server_processes)
            markers.record("run", phase="start", params={"scenario": params.scenario})
            samples: list[Any] = [before]
            tick = crash_schedule(params, server)
            code = run_locust(params, target, run_dir, started, samples, tick)
            markers.record("run", phase="end", locust_exit=code)
            after = settled_metrics(target, params.server_processes)
            metrics = {"before": before, "after": after, "samples": samples}
            if server is not None and server.crashed_metrics:
                metrics["crashed"] = server.crashed_metrics
            (run_dir / "server_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    finally:
        markers.close()
    if code != 0:
        raise SimulationError(
            f"Locust exited with status {code}; see {run_dir / 'locust.out'} and "
            f"{run_dir / 'locust.log'}"
        )
    results = write_report(run_dir)
    if params.load.active == 0:  # scenario idle with nobody chatting: streams are the load
        if not results.get("sqs", {}).get("connected_users"):
            raise SimulationError(f"no stream connected; see {run_dir / 'locust.out'}")
    elif not results["sends"]["attempted"]:
        raise SimulationError(
            f"no simulated user attempted a send, so there is nothing to judge; see "
            f"{run_dir / 'locust.out'}"
        )
    return run_dir, results


def run_simulation(params: SimulationParams, out: Path) -> int:
    """`semichat simulate`: run, print the verdict; 0 when nothing was lost in the user view."""
    from semichat.harness.report import summary_table

    print(f"semichat simulate: {params.scenario}, {params.users} users, {params.duration:.0f} s")
    try:
        run_dir, results = simulate(params, out)
    except SimulationError as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 2
    print(summary_table(results))
    print(f"run directory: {run_dir}")
    lost = results["user_view"]["lost"]
    if lost:
        print(f"FAIL: {lost} (message, tab) pair(s) never reached an open tab's view")
        return 1
    return 0
