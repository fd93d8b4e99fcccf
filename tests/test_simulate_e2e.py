"""`semichat simulate` end to end on the embedded backend, and its figures re-counted by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest

from .conftest import localstack_running

# (scenario, backend, Locust processes): several processes must record as one run does.
RUNS = [("chat", "embedded", 1), ("chat", "localstack", 2), ("reconnect", "embedded", 1)]


@pytest.fixture(scope="module", params=RUNS, ids=[f"{s}-{b}-p{p}" for s, b, p in RUNS])
def chat_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[subprocess.CompletedProcess, Path, str]]:
    scenario, backend, processes = request.param
    out = tmp_path_factory.mktemp("runs")
    cmd = [sys.executable, "-m", "semichat", "simulate", "--scenario", scenario,
           "--backend", backend, "--users", "6", "--duration", "8", "--drain", "5",
           "--send-interval", "1", "--processes", str(processes), "--out", str(out)]  # fmt: skip
    with localstack_running() if backend == "localstack" else nullcontext():
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    yield proc, (out / scenario / "latest").resolve(), scenario


def test_simulate_writes_a_complete_run_directory(chat_run: tuple) -> None:
    proc, run, _ = chat_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("params.json", "results.json", "server_metrics.json", "locust_stats.csv",
                 "plots/latency.png", "plots/deliveries.png"):  # fmt: skip
        assert (run / name).is_file(), name
    files = list((run / "events").glob("*.jsonl"))
    params = json.loads((run / "params.json").read_text())
    # One file per Locust process that ran users, and one for the run markers.
    assert len(files) == params["processes"] + 1, files
    assert "user view" in proc.stdout and "lost" in proc.stdout


def test_check_on_the_run_directory_prints_what_simulate_printed(chat_run: tuple) -> None:
    """`semichat check` is simulate's verdict: the same table, from the same record."""
    proc, run, _ = chat_run
    checked = subprocess.run(
        [sys.executable, "-m", "semichat", "check", str(run)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == proc.returncode == 0, checked.stdout + checked.stderr
    table = checked.stdout.rstrip()
    assert table.startswith(" " * 22 + "wire   user view")
    assert proc.stdout.rstrip().endswith(table)


def test_the_embedded_backend_runs_dynamodb_and_sqs_in_a_process_each(chat_run: tuple) -> None:
    _, run, _ = chat_run
    params = json.loads((run / "params.json").read_text())
    if params["backend"] != "embedded":
        pytest.skip("LocalStack serves SQS; only DynamoDB is embedded")
    backend = json.loads((run / "backend.json").read_text())
    assert backend["endpoint"] != backend["sqs_endpoint"]
    # What the server says it used: moto serves both services, so a server on one endpoint
    # for both would run just as well and this is the only place that tells.
    serving = json.loads((run / "server.log").read_text().splitlines()[0])
    assert (serving["dynamodb"], serving["sqs"]) == (backend["endpoint"], backend["sqs_endpoint"])


def test_nothing_lost_in_the_user_view_and_latencies_recorded(chat_run: tuple) -> None:
    _, run, _ = chat_run
    results = json.loads((run / "results.json").read_text())
    for level in ("wire", "user_view"):
        r = results[level]
        assert r["sent"] > 0
        for key in ("delivered", "lost", "duplicated", "reordered"):
            assert isinstance(r[key], int)
        assert set(r["latency_ms"]) >= {"p50", "p95", "p99", "max"}
    assert results["user_view"]["lost"] == 0
    assert results["user_view"]["delivered"] == results["user_view"]["expected"] > 0
    assert results["wire"]["latency_ms"]["p50"] > 0
    assert results["sqs_requests_per_user_minute"] > 0
    # No --faults: the server injected nothing, and every received notification was settled.
    assert results["faults"]["injected"] == {}
    sqs = results["sqs"]["requests"]
    assert sqs["messages_received"] == sqs["messages_deleted"] + sqs["messages_released"]


def test_figures_agree_with_an_independent_count(chat_run: tuple) -> None:
    """Re-count from the raw lines with plain Python, sharing no code with the checker."""
    _, run, scenario = chat_run
    results = json.loads((run / "results.json").read_text())
    events = [
        json.loads(line)
        for path in sorted((run / "events").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    ok = {e["messageId"]: e for e in events if e["type"] == "send" and e["outcome"] == "ok"}
    assert results["wire"]["sent"] == len(ok)
    assert results["sends"]["attempted"] == sum(e["type"] == "send" for e in events)
    copies: dict[tuple[str, str], int] = defaultdict(int)
    for e in events:
        if e["type"] == "notification":
            copies[(e["messageId"], e["user"])] += 1
    pairs = {(m, r) for m, send in ok.items() for r in send["recipients"]}
    assert results["wire"]["duplicated"] == sum(1 for n in copies.values() if n > 1)
    if scenario == "reconnect":
        # Presence comes and goes here, so `expected` needs the checker's interval logic;
        # what can be re-counted is that the cuts really happened.
        cuts = [e for e in events if e["type"] == "disconnect" and e["reason"] == "cut"]
        assert len(cuts) >= 6
        assert results["streams"]["disconnects"] == sum(e["type"] == "disconnect" for e in events)
        return
    # Every recipient is connected throughout the chat scenario, so every pair is expected.
    assert results["wire"]["expected"] == len(pairs)
    assert results["wire"]["delivered"] == sum(1 for p in pairs if copies.get(p))
    shown = {(e["messageId"], e["user"]) for e in events if e["type"] == "view"}
    assert results["user_view"]["delivered"] == len(pairs & shown)
