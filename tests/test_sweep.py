"""`semichat sweep`: cells, their records, the summary and its spread, and the cost model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from semichat.harness.comparison import conclusion, integrity, spread
from semichat.harness.cost import Activity, Prices, measured_rates, monthly_cost
from semichat.harness.sweep import Cell, SweepParams, cell_command, summarise, sweep

SMALL_RUN = Path(__file__).resolve().parent / "data" / "runs" / "chat-small"


def test_cells_are_the_cross_product_with_repeats() -> None:
    params = SweepParams("chat", ("a", "b"), ("none", "sqs"), (4, 8), repeat=3, duration=5)
    cells = params.cells()
    assert len(cells) == 2 * 2 * 2 * 3
    assert len({c.name for c in cells}) == len(cells)
    assert Cell("a", "none", 4, 1) in cells and Cell("b", "sqs", 8, 3) in cells


def test_a_cell_passes_faults_only_when_there_are_some() -> None:
    params = SweepParams("chat", ("x",), ("none",), (4,), 1, 5.0, simulate_args=("--drain", "2"))
    none = cell_command(params, Cell("x", "none", 4, 1), Path("o"))
    sqs = cell_command(params, Cell("x", "sqs", 4, 1), Path("o"))
    assert "--faults" not in none and none[-2:] == ["--drain", "2"]
    assert sqs[sqs.index("--faults") + 1] == "sqs"
    assert none[none.index("--routing") + 1] == "x"


def _fake_sweep(tmp_path: Path, cells: list[tuple[str, str, int, int, int]]) -> Path:
    """A sweep directory whose runs are copies of a small committed run, one per cell."""
    for routing, faults, users, repeat, code in cells:
        cell = Cell(routing, faults, users, repeat)
        run = tmp_path / "runs" / cell.name / "chat" / "r"
        if code == 0:
            shutil.copytree(SMALL_RUN, run)
        record = {
            "routing": routing, "faults": faults, "users": users, "repeat": repeat,
            "cell": cell.name, "exit": code, "seconds": 1.0,
            "run_dir": str(run.relative_to(tmp_path)) if code == 0 else None, "command": [],
        }  # fmt: skip
        with (tmp_path / "cells.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")
    return tmp_path


def test_summary_has_a_row_per_run_and_marks_failed_ones(tmp_path: Path) -> None:
    sweep_dir = _fake_sweep(
        tmp_path,
        [("a", "none", 4, 1, 0), ("a", "none", 4, 2, 0), ("b", "none", 4, 1, 1)],
    )
    summary = summarise(sweep_dir)
    assert len(summary) == 3
    failed = summary[summary["routing"] == "b"].iloc[0]
    assert not failed["ok"] and not failed["judged"]
    results = json.loads((SMALL_RUN / "results.json").read_text())
    ok = summary[summary["routing"] == "a"].iloc[0]
    assert ok["view_lost"] == results["user_view"]["lost"]
    assert ok["wire_delivered"] == results["wire"]["delivered"]
    requests = results["sqs"]["requests"]["requests"]
    assert ok["sqs_per_message"] == pytest.approx(requests / results["wire"]["sent"], abs=0.01)
    assert ok["faults_injected"] == ok["botocore_retries"] == 0  # a run without faults
    table = integrity(summary)
    assert table.loc[("b", "none", 4), "failed"] == 1
    assert table.loc[("a", "none", 4), "runs"] == 2
    assert spread(summary, ["view_p99_ms"]).loc[("a", "none", 4), ("view_p99_ms", "count")] == 2
    assert "`a` kept the user view whole over 2 run(s)" in conclusion(summary)


def test_summary_counts_the_faults_injected_and_botocores_retries(tmp_path: Path) -> None:
    sweep_dir = _fake_sweep(tmp_path, [("a", "aws", 4, 1, 0)])
    [results_path] = sweep_dir.glob("runs/*/chat/r/results.json")
    results = json.loads(results_path.read_text())
    results["faults"] = {"spec": "aws", "injected": {"send_error": 2, "duplicate": 1}}
    retries = {"sqs.SendMessage.InternalError": 2, "dynamodb.GetItem.ThrottlingException": 1}
    results["botocore"] = {"retries": retries, "errors": {"sqs.SendMessage.InternalError": 1}}
    results_path.write_text(json.dumps(results))
    [row] = summarise(sweep_dir).to_dict("records")
    assert (row["faults_injected"], row["botocore_retries"], row["botocore_errors"]) == (3, 3, 1)


def test_sweep_continues_past_a_failed_cell(tmp_path: Path) -> None:
    # Nothing listens on the target, so every run fails fast, and each must be recorded.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    params = SweepParams(
        "chat", ("per_user_queue", "instance"), ("none",), (2,), 1, 2.0,
        simulate_args=("--target", f"http://127.0.0.1:{port}"),
    )  # fmt: skip
    summary = sweep(params, tmp_path / "sw", echo=False)
    assert list(summary["routing"]) == ["per_user_queue", "instance"]
    assert not summary["ok"].any()
    assert (tmp_path / "sw" / "summary.csv").is_file()


def test_cost_model_uses_the_measured_rates() -> None:
    idle = pd.DataFrame(
        {"routing": ["q", "q", "i"], "judged": True, "sqs_per_user_minute": [3.0, 2.0, 0.01]}
    )
    chat = pd.DataFrame(
        {
            "routing": ["q", "i"],
            "judged": True,
            "sqs_per_user_minute": [10.0, 0.02],
            "sqs_per_message": [8.0, 2.0],
        }
    )
    rates = measured_rates(idle, chat)
    assert rates.loc["q", "sqs_per_user_minute"] == 2.5
    # Net of idle polling: 8 * (1 - 2.5 / 10) = 6.
    assert rates.loc["q", "sqs_per_message"] == pytest.approx(6.0)
    activity = Activity(messages_per_user_day=10, connected_hours_per_day=1)
    prices = Prices(sqs_free_requests=0)
    costs = monthly_cost(rates, [1000], activity, prices).set_index("routing")
    minutes = 1000 * 60 * 30
    messages = 1000 * 10 * 30
    assert costs.loc["q", "sqs_requests"] == pytest.approx(2.5 * minutes + 6.0 * messages)
    assert costs.loc["q", "sqs_dollars"] == pytest.approx(costs.loc["q", "sqs_requests"] * 0.4e-6)
    assert costs.loc["q", "dollars"] > costs.loc["q", "sqs_dollars"]  # DynamoDB is billed too
