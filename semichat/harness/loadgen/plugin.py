"""Locust's hooks for semichat's users: the run's settings, its directory, its recorder, its
markers and its live delivery statistics, the same under `semichat simulate` and plain Locust.

- Under `semichat simulate` the run directory and settings arrive as `SEMICHAT_SIM_*` variables
  (`LoadConfig.from_env`). Under plain `locust -f loadtests/<scenario>.py` every test (each
  start in the web UI too) gets a fresh `runs/adhoc/<UTC time>/`, pointed at by
  `runs/adhoc/latest`, with a `params.json` and a run tag of its own, so that two runs never
  share a folder and `semichat check runs/adhoc` judges the latest.
- A scenario's knobs come from Locust's parsed options (`options.py`) at each test's start.
- The recording process (alone, or the master) writes `run` markers at a plain test's start and
  end (`simulate` writes its own) and runs the live checker (`live_stats.py`); a master hands
  its settings to its workers with the spawn message (`--semichat-load`), and workers ship
  their events to it (`shipping.py`).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC

from semichat.harness.loadgen import live_stats, shipping, web_tab
from semichat.harness.loadgen.config import ENV_PREFIX, LoadConfig, config_from_option, load_option
from semichat.harness.loadgen.options import with_knobs
from semichat.harness.loadgen.recorder import Recorder
from semichat.harness.run_dirs import new_run_directory

# Where plain Locust's runs go (under the working directory), one folder per test.
ADHOC_RUNS = Path("runs")
ADHOC = "adhoc"


class RunState:
    """This process's current run: its settings, recorder and live statistics."""

    def __init__(self) -> None:
        self.base = LoadConfig.from_env()
        # simulate names the run directory; plain Locust makes one per test.
        self.given_dir = ENV_PREFIX + "RUN_DIR" in os.environ
        self.config = self.base
        self.recorder: Recorder | None = None
        self.live: live_stats.LiveStats | None = None
        self.listeners: list[Callable[[LoadConfig], None]] = []
        self.own_load_option = False  # `--semichat-load` set here, not given

    def apply(self, config: LoadConfig) -> None:
        self.config = config
        for listener in self.listeners:
            listener(config)

    def file_recorder(self) -> Recorder:
        if self.recorder is None:
            self.recorder = Recorder(f"{self.config.run_dir}/events")
        return self.recorder

    def close_recorder(self) -> None:
        if self.recorder is not None and not isinstance(self.recorder, shipping.ShippingRecorder):
            self.recorder.close()
            self.recorder = None


STATE = RunState()


def on_config(listener: Callable[[LoadConfig], None]) -> None:
    """Call `listener` with the run's settings whenever a test starts (and now)."""
    STATE.listeners.append(listener)
    listener(STATE.config)


def recorder() -> Recorder:
    return STATE.file_recorder()


def _adhoc_config(config: LoadConfig, environment: Environment) -> LoadConfig:
    """A plain Locust test's own run directory and tag, and its `params.json`."""
    run_dir = new_run_directory(ADHOC_RUNS, ADHOC)
    options = environment.parsed_options
    config = replace(
        config,
        run_dir=str(run_dir),
        # The run directory's second is not enough: two plain runs that start within one
        # second against one server (two tests of a module, two terminals) would name the
        # same users, and each would see the other's notifications on its users' queues.
        run_tag=f"{ADHOC}-{run_dir.name.replace('T', '').rstrip('Z')[-10:]}-{secrets.token_hex(2)}",
        users=int(getattr(options, "num_users", None) or config.users),
        duration=float(getattr(options, "run_time", None) or config.duration),
    )
    params = {
        "scenario": Path(str(environment.locustfile or "locustfile")).stem,
        "made_by": "locust",
        "host": environment.host,
        "users": config.users,
        "load": asdict(config),
    }
    (run_dir / "params.json").write_text(json.dumps(params, indent=2) + "\n")
    return config


def _read_params(run_dir: Path) -> dict[str, Any]:
    try:
        params = json.loads((run_dir / "params.json").read_text())
    except (OSError, ValueError):
        return {}
    return params if isinstance(params, dict) else {}


def _send_seconds(config: LoadConfig) -> float | None:
    return max(0.0, config.send_until - time.time()) if config.send_until else None


@events.init_command_line_parser.add_listener
def _load_option(parser: Any) -> None:
    parser.add_argument(
        "--semichat-load",
        default="",
        include_in_web_ui=False,
        help="the run's settings as JSON, sent by a master to its workers (set for you)",
    )
    parser.add_argument(
        "--no-live-delivery",
        action="store_true",
        include_in_web_ui=False,
        help="no delivery figures in Locust's statistics while the run goes on (they cost a "
        "child process up to a fifth of a core); judge the run afterwards with semichat check",
    )


@events.init.add_listener
def _init(environment: Environment, **_: Any) -> None:
    shipper = shipping.install(environment, lambda: Path(STATE.config.run_dir) / "events")
    if shipper is not None:
        STATE.recorder = shipper
    if not isinstance(environment.runner, WorkerRunner):
        web_tab.install(environment, lambda: live_stats.delivery_rows(_live_results()))


def _live_results() -> dict[str, Any] | None:
    return STATE.live.results if STATE.live is not None else None


@events.test_start.add_listener
def _test_start(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if isinstance(environment.runner, WorkerRunner):
        option = getattr(options, "semichat_load", "")
        config = config_from_option(option, time.time()) if option else STATE.base
        STATE.apply(with_knobs(config, options))
        return
    config = with_knobs(STATE.base, options)
    if not STATE.given_dir:
        STATE.close_recorder()
        config = _adhoc_config(config, environment)
    STATE.apply(config)
    given_load = getattr(options, "semichat_load", "") and not STATE.own_load_option
    if isinstance(environment.runner, MasterRunner) and not given_load:
        # (simulate passes its own, whose sending window starts when the workers start; a
        # plain master sets it anew for each test, which has a run directory of its own)
        vars(options)["semichat_load"] = load_option(config, _send_seconds(config))
        STATE.own_load_option = True
    if not STATE.given_dir:  # (simulate records its own markers, around Locust's whole run)
        scenario = Path(str(environment.locustfile or "")).stem
        params = {"run": config.run_tag, "scenario": scenario}
        recorder().record("run", phase="start", params=params)
    grace = float(_read_params(Path(config.run_dir)).get("grace", 5.0))
    if STATE.live is not None:
        STATE.live.stop()
        STATE.live = None
    if not getattr(options, "no_live_delivery", False):
        STATE.live = live_stats.LiveStats(environment, Path(config.run_dir), grace)


@events.test_stop.add_listener
def _test_stop(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    if not STATE.given_dir:
        recorder().record("run", phase="end", params={"run": STATE.config.run_tag})
    if STATE.live is not None:
        STATE.live.finish()
        if getattr(environment.parsed_options, "csv_prefix", None):
            # Locust's CSV writer rewrites its files every second and is not called again at
            # exit: give it one more turn, so that the final figures reach the `--csv` files.
            gevent.sleep(CSV_STATS_INTERVAL_SEC * 1.5)


@events.quitting.add_listener
def _quitting(environment: Environment, **_: Any) -> None:
    if STATE.live is not None:
        STATE.live.stop()
    if STATE.recorder is not None:
        STATE.recorder.close()
