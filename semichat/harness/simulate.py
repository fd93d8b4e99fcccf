"""`semichat simulate`: one run of the harness, from parameters to a verdict.

A run is a directory `runs/<scenario>/<UTC time>/` holding `params.json`, the raw client events
(`events/*.jsonl`), Locust's own stats and log, the server's SQS request counters before and
after, `results.json` from the checker, and plots. `runs/<scenario>/latest` points at the newest.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from semichat.harness.loadgen.config import LoadConfig
from semichat.harness.loadgen.recorder import Recorder
from semichat.harness.scenarios import scenario_file, scenario_knobs

SERVER_START_TIMEOUT_S = 90.0
# Seconds between two samples of the target's /metrics during a run.
METRICS_SAMPLE_TICKS = 5


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
    load: LoadConfig = field(default_factory=LoadConfig)

    @classmethod
    def for_scenario(cls, scenario: str, knobs: dict[str, Any], **params: Any) -> SimulationParams:
        """The scenario's own knobs (its `KNOBS`), overridden by `knobs` from the command line."""
        load = replace(LoadConfig(), **{**scenario_knobs(scenario), **knobs})
        return cls(scenario=scenario, load=load, **params)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def start_server(
    params: SimulationParams, run_dir: Path, endpoint: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (run_dir / "server.log").open("wb")
    cmd = [sys.executable, "-m", "semichat", "serve", "--port", str(port)]
    cmd += ["--backend", params.backend, "--routing", params.routing]
    cmd += ["--shards", str(params.shards)]
    # The simulated users say who they are with x-user-id: demo identity, on loopback.
    cmd += ["--auth", "demo"]
    if endpoint is not None:
        cmd += ["--endpoint-url", endpoint]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    target = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SimulationError(f"server exited early; see {run_dir / 'server.log'}")
        try:
            _get_json(f"{target}/healthz", timeout=1)
            return proc, target
        except OSError:
            time.sleep(0.3)
    stop_process(proc)
    raise SimulationError(f"server not healthy after {SERVER_START_TIMEOUT_S} s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def simulated_users(params: SimulationParams, run_tag: str) -> list[str]:
    """The user ids the Locust processes will use (`ChatUser.identity_of`): Locust spreads
    users evenly, so each process numbers at most ceil(users / processes) of them."""
    per_process = -(-params.users // max(1, params.processes))
    return [
        f"{run_tag}-w{w}-u{i}" for w in range(max(1, params.processes)) for i in range(per_process)
    ]


def provision_ahead(
    params: SimulationParams, run_tag: str, run_dir: Path
) -> tuple[subprocess.Popen[bytes] | None, str | None]:
    """With routing `preprovisioned`, create the users' queues before the server starts, as
    an operator would, and write how long that took to `provisioning.json`.

    On the embedded backend the backend is started here (and its endpoint given to the
    server), so the queues outlive provisioning. Returns that process and endpoint, if any."""
    if params.routing != "preprovisioned":
        return None, None
    import asyncio

    from semichat.aws.provisioning import provision
    from semichat.settings import Settings

    backend, endpoint = None, None
    settings = Settings.from_env().with_overrides(backend=params.backend, routing=params.routing)
    if params.backend == "embedded":
        from semichat.aws.embedded import start_backend_process

        backend, endpoint = start_backend_process()
        settings = settings.with_overrides(endpoint_url=endpoint)
    users = simulated_users(params, run_tag)
    began = time.monotonic()
    asyncio.run(_provision(settings, users, provision))
    seconds = time.monotonic() - began
    report = {"routing": params.routing, "users": len(users), "seconds": round(seconds, 3)}
    (run_dir / "provisioning.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"  provisioned {len(users)} users' queues in {seconds:.1f} s")
    return backend, endpoint


async def _provision(settings: Any, users: list[str], provision: Any) -> None:
    from semichat.aws.embedded import with_backend

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
        cmd += ["--processes", str(params.processes)]
    return cmd


def _count_events(events_dir: Path) -> int:
    total = 0
    for path in events_dir.glob("*.jsonl"):
        with path.open("rb") as f:
            total += sum(chunk.count(b"\n") for chunk in iter(lambda f=f: f.read(1 << 16), b""))
    return total


def run_locust(
    params: SimulationParams,
    target: str,
    run_dir: Path,
    started: float,
    samples: list[Any] | None = None,
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
                        samples.append(_get_json(f"{target}/metrics", timeout=2))
                    except (OSError, ValueError):
                        pass  # one missed sample only narrows the window
                ticks += 1
                time.sleep(1)
            if tty:
                print()
        finally:
            # Bounded: Locust stops itself at -t, and is stopped here if it overruns.
            if proc.poll() is None:
                stop_process(proc)  # type: ignore[arg-type]
    return int(proc.returncode or 0)


def target_metrics(target: str) -> Any:
    """The target's `/metrics`, or a SimulationError saying it cannot be reached."""
    try:
        return _get_json(f"{target}/metrics")
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
        target_metrics(params.target.rstrip("/"))  # fail before making a run directory
    run_dir = run_directory(out, params.scenario)
    markers = Recorder(run_dir / "events")
    server = backend = None
    run_tag = params.load.run_tag + "-" + run_dir.name.replace("T", "").rstrip("Z")[-10:]
    try:
        if params.target:
            target = params.target.rstrip("/")
        else:
            backend, endpoint = provision_ahead(params, run_tag, run_dir)
            server, target = start_server(params, run_dir, endpoint)
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
        before = target_metrics(target)
        markers.record("run", phase="start", params={"scenario": params.scenario})
        samples: list[Any] = [before]
        code = run_locust(params, target, run_dir, started, samples)
        markers.record("run", phase="end", locust_exit=code)
        after = target_metrics(target)
        (run_dir / "server_metrics.json").write_text(
            json.dumps({"before": before, "after": after, "samples": samples}, indent=2) + "\n"
        )
    finally:
        markers.close()
        if server is not None:
            stop_process(server)
        if backend is not None:
            from semichat.aws.embedded import stop_backend_process

            stop_backend_process(backend)
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
