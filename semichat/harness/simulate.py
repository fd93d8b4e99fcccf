"""`semichat simulate`: one run of the harness, from parameters to a verdict.

A run is a directory `runs/<scenario>/<UTC time>/` holding `params.json`, the raw client events
(`events/*.jsonl`), Locust's own stats and log, the server's SQS request counters before and
after, `results.json` from the checker, and plots. `runs/<scenario>/latest` points at the newest.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from semichat.harness.loadgen.recorder import Recorder
from semichat.harness.locust_process import run_locust
from semichat.harness.params import SimulationParams
from semichat.harness.run_dirs import new_run_directory as run_directory
from semichat.harness.server_metrics import fleet_metrics
from semichat.harness.server_process import ServerProcess, ServerStartError

# Long enough for the longest long poll (20 s) to return after its client left.
SETTLE_TIMEOUT_S = 25.0


class SimulationError(Exception):
    """A run that cannot be judged: no load ran, or the target never answered."""


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
        # The emulators' pids: the run records their scheduler statistics (`emulator_usage`).
        pids = [b.pid for b in backends]
        (run_dir / "backend.json").write_text(
            json.dumps({"endpoint": endpoint, "sqs_endpoint": sqs_endpoint, "pids": pids}) + "\n"
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


def write_server_metrics(
    params: SimulationParams,
    target: str,
    run_dir: Path,
    server: ServerProcess | None,
    before: Any,
    samples: list[Any],
) -> None:
    """`server_metrics.json`: the target's `/metrics` before, during and after the run. After a
    web UI session that a terminal's Ctrl-C ended, the server got the SIGINT too and may be
    gone: the run is judged then without the server's counters."""
    try:
        after = settled_metrics(target, params.server_processes)
    except SimulationError:
        if params.web_port is None:
            raise
        print("  the server stopped with Locust (Ctrl-C): judging without its SQS counters")
        return
    metrics = {"before": before, "after": after, "samples": samples}
    if server is not None and server.crashed_metrics:
        metrics["crashed"] = server.crashed_metrics
    (run_dir / "server_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def emulator_schedstats(run_dir: Path) -> list[dict[str, float] | None]:
    """Each emulator process's CPU, run-queue wait and turns now (`server/scheduling.py`), in
    `backend.json`'s order; empty without embedded emulators."""
    from semichat.server.scheduling import schedstat

    path = run_dir / "backend.json"
    pids = json.loads(path.read_text()).get("pids", []) if path.is_file() else []
    return [schedstat(pid) for pid in pids]


def write_emulator_schedstats(run_dir: Path, before: list[dict[str, float] | None]) -> None:
    """`emulator_schedstats.json`: before and after the run, as the server's metrics are."""
    if before:
        doc = {"before": before, "after": emulator_schedstats(run_dir)}
        (run_dir / "emulator_schedstats.json").write_text(json.dumps(doc, indent=1) + "\n")


def simulate(params: SimulationParams, out: Path) -> tuple[Path, dict[str, Any]]:
    """Run the load against the target (or a server started here) and judge it.

    Raises SimulationError when there is nothing to judge: the target never answered, Locust
    failed, or no user attempted a send."""
    from semichat.harness.report import write_report
    from semichat.harness.run_record import RunRecordError

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
                # In the web UI the user stops the test: users send until then.
                send_until=0.0 if params.web_port is not None else started + params.duration,
                users=params.users,
                duration=params.duration + params.drain,
            )
            params = replace(params, load=load, target=target)
            (run_dir / "params.json").write_text(json.dumps(params.to_json(), indent=2) + "\n")
            before = target_metrics(target, params.server_processes)
            emulators_before = emulator_schedstats(run_dir)
            markers.record(
                "run", phase="start", params={"scenario": params.scenario, "run": run_tag}
            )
            samples: list[Any] = [before]
            tick = crash_schedule(params, server)
            code = run_locust(params, target, run_dir, started, samples, tick)
            markers.record("run", phase="end", locust_exit=code)
            write_server_metrics(params, target, run_dir, server, before, samples)
            write_emulator_schedstats(run_dir, emulators_before)
    finally:
        markers.close()
    if code != 0:
        raise SimulationError(
            f"Locust exited with status {code}; see {run_dir / 'locust.out'} and "
            f"{run_dir / 'locust.log'}"
        )
    try:
        results = write_report(run_dir)
    except RunRecordError as exc:
        raise SimulationError(str(exc)) from None
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
    """`semichat simulate`: run, print the verdict (`semichat check`'s); 0 when nothing was lost
    in the user view."""
    from semichat.harness.verdict import verdict

    print(f"semichat simulate: {params.scenario}, {params.users} users, {params.duration:.0f} s")
    try:
        run_dir, results = simulate(params, out)
    except SimulationError as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 2
    return verdict(run_dir, results)
