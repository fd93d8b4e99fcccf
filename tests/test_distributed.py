"""Locust beyond one machine: a master and two workers, each in its own working directory,
sharing nothing but loopback. The run directory the master writes holds events from both
workers and is judged as one run."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from semichat import ports
from semichat.harness.loadgen.config import LoadConfig, config_from_option, load_option
from semichat.harness.server_process import stop_process

RUN_TIMEOUT_S = 240


def test_a_worker_sends_for_the_window_the_master_gives_from_its_own_start() -> None:
    config = LoadConfig(run_tag="t", tabs=2, send_until=123.0)
    received = config_from_option(load_option(config, send_seconds=15), now=1000.0)
    assert received.tabs == 2 and received.run_tag == "t"
    assert received.send_until == 1015.0


@pytest.fixture(scope="module")
def distributed_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Path, list[Path]]]:
    master_dir, *worker_dirs = (tmp_path_factory.mktemp(n) for n in ("master", "w1", "w2"))
    port = ports.unused_fixed_port()  # ZeroMQ cannot bind beside a reservation
    semichat = [sys.executable, "-m", "semichat"]
    master = subprocess.Popen(
        [
            *semichat,
            "simulate",
            "--scenario",
            "chat",
            "--users",
            "6",
            "--duration",
            "8",
            "--drain",
            "5",
            "--send-interval",
            "1",
            "--expect-workers",
            "2",
            "--master-bind-port",
            str(port),
            "--out",
            "runs",
        ],
        cwd=master_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    workers = [
        subprocess.Popen(
            [*semichat, "worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
            cwd=d,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for d in worker_dirs
    ]
    try:
        out, _ = master.communicate(timeout=RUN_TIMEOUT_S)
        for w in workers:
            w.wait(30)  # they end with the master
        assert master.returncode == 0, out
        yield out, (master_dir / "runs" / "chat" / "latest").resolve(), worker_dirs
    finally:
        for proc in (master, *workers):
            stop_process(proc)  # type: ignore[arg-type]


def test_events_of_both_workers_land_in_the_masters_run_directory(
    distributed_run: tuple[str, Path, list[Path]],
) -> None:
    _, run, worker_dirs = distributed_run
    for d in worker_dirs:
        assert not list(d.iterdir()), "a worker wrote into its own working directory"
    files = sorted((run / "events").glob("worker*.jsonl"))
    assert [f.name[:7] for f in files] == ["worker0", "worker1"]
    users_by_file = []
    for f in files:
        events = [json.loads(line) for line in f.read_text().splitlines()]
        types = {e["type"] for e in events}
        # Sends, what was seen, and the disconnects of the users' last moments, flushed at stop.
        assert {"send", "notification", "view", "connect", "disconnect"} <= types, types
        users_by_file.append({e["user"] for e in events if "user" in e})
    # User ids carry the worker index: no user is simulated by both workers.
    assert not users_by_file[0] & users_by_file[1]
    assert all("-w0-" in u for u in users_by_file[0])
    assert all("-w1-" in u for u in users_by_file[1])


def test_the_distributed_run_is_judged_as_one(distributed_run: tuple) -> None:
    out, run, _ = distributed_run
    results = json.loads((run / "results.json").read_text())
    view = results["user_view"]
    assert results["sends"]["attempted"] > 0
    assert view["lost"] == 0 and view["delivered"] == view["expected"] > 0
    # The conversations of both workers are in the one judgement: 6 users, 6 tabs.
    assert "clients (tabs) in the user view: 6" in out
