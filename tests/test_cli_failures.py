"""What a user meets when something is wrong at start: one line saying what and how to fix it,
a non-zero exit, never a traceback; and a package that carries its scenarios when installed."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from semichat.emulator.backend import start_backend_process, stop_backend_process
from semichat.harness.scenarios import scenario_file, scenario_knobs, scenario_names

from .waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "semichat", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_simulate_against_a_target_where_nothing_listens_exits_non_zero(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_cli(
        "simulate", "--users", "2", "--duration", "2", "--target", f"http://127.0.0.1:{port}",
        "--out", str(tmp_path / "runs"), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"127.0.0.1:{port} does not answer" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists(), "no run directory for a run that never started"


@pytest.mark.backend
def test_serve_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    moto, endpoint = start_backend_process()
    try:
        proc = _serve_on_a_taken_port(endpoint, tmp_path)
    finally:
        stop_backend_process(moto)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("semichat serve: cannot listen on"), proc.stderr
    assert "choose another --port" in last
    assert "Traceback" not in proc.stderr


def _serve_on_a_taken_port(endpoint: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        return run_cli(
            "serve", "--port", str(port), "--endpoint-url", endpoint,
            "--table-prefix", f"t{port}-", cwd=cwd,
        )  # fmt: skip


def test_serve_with_an_unreachable_backend_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    proc = run_cli(
        "serve", "--port", "0", "--endpoint-url", f"http://127.0.0.1:{dead}", cwd=tmp_path
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("semichat serve: the backend did not answer at start"), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("flag", ["--grace", "--drain", "--duration", "--spawn-rate"])
def test_every_simulate_flag_says_what_it_does_and_its_unit(flag: str, tmp_path: Path) -> None:
    proc = run_cli("simulate", "--help", cwd=tmp_path)
    text = " ".join(proc.stdout.split())
    start = text.index(flag + " ")  # the options list, not the usage line
    start = text.index(flag + " ", start + 1)
    described = text[start : start + 200]
    assert "second" in described, described


@pytest.mark.parametrize("name", scenario_names())
def test_each_scenario_states_its_knobs_and_defines_its_behaviour(name: str) -> None:
    knobs = scenario_knobs(name)
    assert knobs, f"{name} sets no KNOBS"
    tree = ast.parse(scenario_file(name).read_text())
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    methods = {f.name for c in classes for f in c.body if isinstance(f, ast.FunctionDef)}
    # Not an empty subclass: its behaviour (start and tasks) reads in the file itself.
    assert {"on_start", "wait_time"} <= methods, methods


@pytest.mark.slow
def test_the_wheel_carries_the_scenarios_and_the_widget(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("semichat-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # One copy: the checkout's loadtests/, installed as the subpackage semichat.loadtests.
    for scenario in scenario_names():
        assert f"semichat/loadtests/{scenario}.py" in names
    assert "semichat/static/widget.js" in names
    assert not any(n.startswith("loadtests/") for n in names)
    # Installed (no checkout beside it), the package finds its scenarios in that copy.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = "from semichat.harness.scenarios import scenario_file; print(scenario_file('chat'))"
    found = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.strip()  # fmt: skip
    assert found == str(site / "semichat" / "loadtests" / "chat.py")


@pytest.mark.slow
def test_a_terminated_simulate_stops_every_process_it_started(tmp_path: Path) -> None:
    import psutil

    cmd = [sys.executable, "-m", "semichat", "simulate", "--scenario", "chat", "--users", "2",
           "--duration", "300", "--out", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: list[psutil.Process] = []
    try:
        # Under way: its backend, server and Locust are up, and users are recording events.
        asyncio.run(
            wait_for(
                lambda: any(p.stat().st_size for p in tmp_path.glob("chat/*/events/*.jsonl")),
                180,
                "events recorded",
            )
        )
        children = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "semichat serve" in names and "semichat backend" in names and "locust" in names
        proc.terminate()
        assert proc.wait(60) == 128 + 15
        _, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, [" ".join(p.cmdline()) for p in alive]
    finally:
        # A failure here must not leave a server behind.
        for p in [*children, psutil.Process(proc.pid)] if proc.poll() is None else children:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
