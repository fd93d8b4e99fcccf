"""Locust as Locust users run it: `locust -f loadtests/<scenario>.py` on its own, then
`semichat check runs/adhoc`; the scenario's knobs apply, and the delivery figures are in Locust's
own statistics and CSV files. Against a server on 127.0.0.1 only, bounded in users and time."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from semichat import ports
from semichat.harness.report import summary_table

from .process_dump import wait_or_explain
from .test_browser import ChatServer, http_ok, open_streams, wait_until

ROOT = Path(__file__).resolve().parents[1]
LOCUST_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def locust_target() -> Iterator[ChatServer]:
    server = ChatServer("plain-locust-server", ["--backend", "embedded"])
    try:
        server.start()
        yield server
    finally:
        server.release()


def locust(cwd: Path, scenario: str, url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("SEMICHAT_SIM_")}
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / f"{scenario}.py")]
    cmd += ["--headless", "--host", url, *args]
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def quiet_streams(url: str) -> int:
    """The server's open streams once an earlier test's have closed."""
    wait_until(lambda: open_streams(url) == 0, 60, "earlier streams to close")
    return 0


def rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open() as f:
        return {(r["Type"], r["Name"]): r for r in csv.DictReader(f)}


def test_a_plain_locust_run_is_judged_by_check_and_its_csv_has_the_latencies(
    tmp_path: Path, locust_target: ChatServer
) -> None:
    proc = locust(tmp_path, "chat", locust_target.url, "-u", "6", "-t", "15s", "--csv", "out/l")
    output, _ = proc.communicate(timeout=LOCUST_TIMEOUT_S)
    assert proc.returncode in (0, 1), output  # 1: Locust saw a failure, which check judges
    assert "WIRE     notification" in output and "VIEW     notification" in output

    checked = subprocess.run(
        [sys.executable, "-m", "semichat", "check", "runs/adhoc"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    (run_dir,) = (tmp_path / "runs" / "adhoc").glob("2*")
    results = json.loads((run_dir / "results.json").read_text())
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert summary_table(results) in checked.stdout  # simulate's table, from the same results
    assert results["sends"]["ok"] > 0 and results["user_view"]["lost"] == 0
    assert results["params"]["scenario"] == "chat" and results["params"]["users"] == 6

    stats = rows(tmp_path / "out" / "l_stats.csv")
    for kind, level in (("WIRE", "wire"), ("VIEW", "user_view")):
        row = stats[(kind, "notification")]
        judged = int(row["Request Count"]) - int(row["Failure Count"])
        assert judged == results[level]["delivered"], (kind, row)
        assert float(row["Max Response Time"]) == pytest.approx(
            results[level]["latency_ms"]["max"], abs=1.0
        )


def test_multitab_under_plain_locust_opens_the_scenarios_tab_count(
    tmp_path: Path, locust_target: ChatServer
) -> None:
    users, tabs = 2, 3  # multitab's KNOBS: tabs 3
    base = quiet_streams(locust_target.url)
    proc = locust(tmp_path, "multitab", locust_target.url, "-u", str(users), "-t", "60s")
    try:
        wait_until(
            lambda: open_streams(locust_target.url) - base >= users * tabs,
            timeout=90,
            what=f"{users * tabs} open streams",
        )
        assert open_streams(locust_target.url) - base == users * tabs
    finally:
        proc.terminate()
        proc.communicate(timeout=LOCUST_TIMEOUT_S)


def test_a_knob_given_to_plain_locust_overrides_the_scenario(
    tmp_path: Path, locust_target: ChatServer
) -> None:
    base = quiet_streams(locust_target.url)
    proc = locust(tmp_path, "multitab", locust_target.url, "-u", "1", "-t", "60s", "--tabs", "2")
    try:
        wait_until(lambda: open_streams(locust_target.url) - base >= 2, 90, "2 open streams")
        params = json.loads(next((tmp_path / "runs" / "adhoc").glob("2*/params.json")).read_text())
        assert params["load"]["tabs"] == 2
        assert open_streams(locust_target.url) - base == 2
    finally:
        proc.terminate()
        proc.communicate(timeout=LOCUST_TIMEOUT_S)


def _post(url: str, data: dict[str, object] | None = None) -> dict[str, object]:
    body = urllib.parse.urlencode(data or {}).encode()
    req = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_each_test_started_in_the_web_ui_is_a_run_of_its_own(
    tmp_path: Path, locust_target: ChatServer
) -> None:
    """Two tests in one web UI session: two run directories, each judged alone, each with its
    users numbered from 0 under a tag of its own."""
    port = ports.unused_fixed_port()
    web = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "chat.py")]
    cmd += ["--host", locust_target.url, "--web-host", "127.0.0.1", "--web-port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMICHAT_SIM_")}
    log = tmp_path / "locust.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until(lambda: http_ok(web + "/"), 90, "Locust's web UI")
        for _ in range(2):
            form = {"user_count": 3, "spawn_rate": 3, "host": locust_target.url}
            assert _post(web + "/swarm", form)["success"]
            wait_until(lambda: _sent_so_far(web) >= 3, 90, "sends in the Delivery rows")
            assert _post(web + "/stop")["success"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            wait_or_explain(proc, LOCUST_TIMEOUT_S, "Locust's web UI after Ctrl-C", log)
        finally:
            if proc.poll() is None:
                proc.kill()
    runs = sorted((tmp_path / "runs" / "adhoc").glob("2*"))
    assert len(runs) == 2
    for run_dir in runs:
        checked = subprocess.run(
            [sys.executable, "-m", "semichat", "check", str(run_dir)],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr
        results = json.loads((run_dir / "results.json").read_text())
        assert results["user_view"]["lost"] == 0 and results["wire"]["unexpected"] == 0
        tag = json.loads((run_dir / "params.json").read_text())["load"]["run_tag"]
        users = {e["user"] for e in _events(run_dir) if "user" in e}
        assert users == {f"{tag}-w0-u{i}" for i in range(3)}


def _sent_so_far(web: str) -> int:
    with urllib.request.urlopen(web + "/semichat/delivery", timeout=10) as resp:
        rows = {r["figure"]: r for r in json.loads(resp.read())}
    return int(rows["sent"]["wire"]) if rows else 0


def _events(run_dir: Path) -> list[dict[str, object]]:
    return [json.loads(line) for f in (run_dir / "events").glob("*.jsonl") for line in f.open()]
