"""The simulated client at delivery's edges (issue 25), judged by the checker: a tab offline
while 300 messages arrive, streams stalled by the server's `stall` fault, and streams stalled
by a proxy that keeps both connections open. Each is one `semichat simulate` run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .stall_proxy import StallProxy
from .test_browser import ChatServer
from .test_browser_edges import environment

# A 1 s heartbeat: the watchdog (two intervals) acts within the seconds a test runs.
QUICK = {"SEMICHAT_HEARTBEAT_SECONDS": "1"}
# Scenario `gap` sends 300 messages from one user at once.
NO_SEND_LIMIT = {"SEMICHAT_SENDS_PER_SECOND": "1000", "SEMICHAT_SEND_BURST": "1000"}
STALL_EVERY_S = 3.0

Run = tuple[subprocess.CompletedProcess[str], Path]


def simulate(out: Path, scenario: str, *args: str, env: dict[str, str]) -> Run:
    cmd = [sys.executable, "-m", "semichat", "simulate", "--scenario", scenario,
           "--out", str(out), *args]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=180, env={**os.environ, **env}
    )
    return proc, (out / scenario / "latest").resolve()


def events(run: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted((run / "events").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def results(run: Path) -> dict[str, Any]:
    return dict(json.loads((run / "results.json").read_text()))


def disconnects(run: Path, reason: str) -> int:
    return sum(e["type"] == "disconnect" and e.get("reason") == reason for e in events(run))


@pytest.fixture(scope="module")
def gap_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    args = ["--users", "2", "--duration", "20", "--drain", "8"]
    return simulate(tmp_path_factory.mktemp("gap"), "gap", *args, env=NO_SEND_LIMIT)


def test_a_simulated_tab_offline_while_300_arrive_shows_all_300_once_in_order(
    gap_run: Run,
) -> None:
    proc, run = gap_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    view = results(run)["user_view"]
    assert (view["lost"], view["duplicated"], view["reordered"]) == (0, 0, 0), view
    assert view["delivered"] == view["expected"] == 2 * 300
    recorded = events(run)
    assert disconnects(run, "offline") == 1
    offline_at = next(e["t"] for e in recorded if e.get("reason") == "offline")
    sends = sorted((e for e in recorded if e["type"] == "send"), key=lambda e: e["t"])
    reader = next(e["user"] for e in recorded if e.get("reason") == "offline")
    shown = [e["messageId"] for e in recorded if e["type"] == "view" and e["user"] == reader]
    # Every one was sent while the reader was away, and its view shows them in send order.
    assert len(sends) == 300 and all(e["t"] >= offline_at for e in sends)
    assert shown == [e["messageId"] for e in sends]


@pytest.fixture(scope="module")
def stall_fault_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    args = ["--users", "4", "--duration", "12", "--drain", "6", "--faults", "stall=0.5,seed=3"]
    return simulate(tmp_path_factory.mktemp("stall"), "chat", *args, env=QUICK)


def test_streams_stalled_by_the_server_are_counted_and_the_view_stays_whole(
    stall_fault_run: Run,
) -> None:
    proc, run = stall_fault_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outcome = results(run)
    stalls = outcome["faults"]["injected"].get("stall", 0)
    assert stalls >= 1, outcome["faults"]
    assert f"stall {stalls}" in proc.stdout  # the run's report counts them, as sweeps do
    # The watchdog is what ended each stalled stream: without it they would stay silent.
    assert disconnects(run, "stalled") >= 1
    assert outcome["user_view"]["lost"] == 0, outcome["user_view"]
    assert outcome["user_view"]["delivered"] == outcome["user_view"]["expected"] > 0


@pytest.fixture(scope="module")
def stalled_proxy_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Run, int]]:
    server = ChatServer(f"stall-proxy-{uuid.uuid4().hex[:6]}", ["--backend", "embedded"])
    try:
        with environment(**QUICK):
            server.start()
        with StallProxy(server.port) as proxy:
            done = threading.Event()

            def stall_now_and_then() -> None:
                while not done.wait(STALL_EVERY_S):
                    proxy.stall_streams()

            staller = threading.Thread(target=stall_now_and_then, daemon=True)
            staller.start()
            args = ["--target", proxy.url, "--users", "4", "--duration", "12", "--drain", "6"]
            try:
                run = simulate(tmp_path_factory.mktemp("proxy"), "chat", *args, env=QUICK)
            finally:
                done.set()
                staller.join(10)
            yield run, proxy.stalled_total
    finally:
        server.release()


def test_simulated_clients_behind_a_stalling_proxy_reconnect_and_see_every_message(
    stalled_proxy_run: tuple[Run, int],
) -> None:
    (proc, run), stalled = stalled_proxy_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert stalled >= 4, "the proxy stalled too few streams for the test to mean anything"
    assert disconnects(run, "stalled") >= stalled // 2
    view = results(run)["user_view"]
    assert view["lost"] == 0, view
    assert view["delivered"] == view["expected"] > 0
    print(f"proxy stalled {stalled} streams; {results(run)['wire']['lost']} lost on the wire")


def test_stall_timing_is_bounded(stalled_proxy_run: tuple[Run, int]) -> None:
    """Each stalled stream was given up within two heartbeats (plus a loaded machine's slack)
    of its last event: the watchdog, not Locust's 60 s network timeout, ended it."""
    (_, run), _ = stalled_proxy_run
    recorded = events(run)
    last_seen: dict[str, float] = {}
    for e in recorded:
        if e["type"] in ("connect", "notification") and "stream" in e:
            last_seen[e["stream"]] = e["t"]
    gaps = [
        e["t"] - last_seen[e["stream"]]
        for e in recorded
        if e["type"] == "disconnect" and e.get("reason") == "stalled"
    ]
    assert gaps and max(gaps) < 2 * 1.0 + STALL_EVERY_S + 3.0, gaps
