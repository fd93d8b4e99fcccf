"""The Locust process of a simulation: its command line, and the wait for it with progress.

Headless by default; with `--web` Locust's web UI instead (on 127.0.0.1), where the user starts
and stops the test, and `semichat simulate` judges the run once Locust exits (Ctrl-C).
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from semichat import ports
from semichat.harness.loadgen.config import knob_flag
from semichat.harness.params import SimulationParams
from semichat.harness.scenarios import scenario_file, scenario_knobs
from semichat.harness.server_metrics import fleet_metrics
from semichat.harness.server_process import stop_process

# Seconds between two samples of the target's /metrics during a run.
METRICS_SAMPLE_TICKS = 5
# How long a master waits for its workers to connect before it gives up.
WORKERS_WAIT_S = 300
# The web UI listens on loopback only: it starts and stops load on whatever host it is given.
WEB_HOST = "127.0.0.1"


def locust_command(params: SimulationParams, target: str, run_dir: Path) -> list[str]:
    spawn_rate = params.spawn_rate or max(1.0, params.users / 2)
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(scenario_file(params.scenario)),
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
        # Request failures are the checker's to judge; a non-zero exit means Locust itself failed.
        "--exit-code-on-error",
        "0",
    ]
    if params.web_port is None:
        cmd += ["--headless", "--only-summary"]
    else:  # the web UI: the user starts and stops the test; -u and -r fill in its form
        cmd += ["--web-host", WEB_HOST, "--web-port", str(params.web_port)]
    if not params.live_delivery:
        cmd += ["--no-live-delivery"]
    # The scenario's settings as its own Locust arguments (`loadgen/options.py`).
    for knob in scenario_knobs(params.scenario):
        cmd += [knob_flag(knob), str(getattr(params.load, knob))]
    if params.scenario != "queue_ramp":  # the ramp's own shape decides users and length
        cmd += ["-u", str(params.users), "-r", str(spawn_rate)]
        if params.web_port is None:
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
        if params.web_port is not None:
            return wait_for_web_ui(proc, params.web_port, run_dir)
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


def wait_for_web_ui(proc: subprocess.Popen[bytes], port: int, run_dir: Path) -> int:
    """Wait while the user drives Locust's web UI; Ctrl-C (SIGINT) quits Locust, and the run
    is judged then."""
    print(f"  Locust's web UI: http://{WEB_HOST}:{port}/ (its Delivery tab: the checker's table)")
    print("  start and stop the test there; press Ctrl-C here to end and judge the run", flush=True)
    try:
        while proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Locust writes its last events and stats on it
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop_process(proc)
    print(f"  Locust exited ({proc.returncode}); its output: {run_dir / 'locust.out'}")
    # Locust exits 1 on Ctrl-C when its statistics hold failures; the checker judges those.
    return 0 if proc.returncode in (0, 1, -signal.SIGINT) else int(proc.returncode)
