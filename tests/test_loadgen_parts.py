"""The plain-Python parts of the harness: views, knobs, recording, run directories, costs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from semichat.loadgen.config import LoadConfig
from semichat.loadgen.recorder import Recorder
from semichat.loadgen.view import ChatView
from semichat.report import sqs_cost, summary_table
from semichat.simulate import run_directory


def test_view_shows_each_message_once_in_server_order() -> None:
    view = ChatView()
    assert view.merge([{"messageId": "a"}, {"messageId": "b"}]) == ["a", "b"]
    assert view.merge([{"messageId": "b"}, {"messageId": "c"}, {"messageId": "a"}]) == ["c"]
    assert view.messages == ["a", "b", "c"]
    assert "c" in view and "z" not in view


def test_load_config_round_trips_through_the_environment() -> None:
    config = LoadConfig(run_dir="/x", conversation_size=5, send_interval=0.25, tabs=3)
    assert LoadConfig.from_env(config.to_env()) == config
    assert LoadConfig.from_env({}) == LoadConfig()


def test_recorder_appends_one_json_line_per_event(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "events")
    rec.record("connect", user="u", stream="s")
    rec.record("view", t=12.5, user="u", messageId="m")
    rec.close()
    [path] = (tmp_path / "events").glob("*.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["type"] for e in lines] == ["connect", "view"]
    assert lines[1]["t"] == 12.5
    assert lines[0]["t"] > 1e9


def test_run_directories_are_unique_and_latest_points_at_the_newest(tmp_path: Path) -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    first = run_directory(tmp_path, "chat", now)
    second = run_directory(tmp_path, "chat", now)
    assert first != second
    assert (first / "events").is_dir()
    assert (tmp_path / "chat" / "latest").resolve() == second.resolve()


def test_sqs_cost_is_requests_per_connected_user_per_minute() -> None:
    counters = {"send": 0, "receive": 0, "delete": 0, "requests": 0, "active_polls": 3}
    metrics = {
        "before": {"time": 0.0, "sqs": counters},
        "after": {"time": 120.0, "sqs": {**counters, "receive": 30, "send": 10, "requests": 40}},
    }
    events = pd.DataFrame(
        {"type": ["connect", "connect", "connect", "send"], "user": ["a", "b", "a", "a"]}
    )
    cost = sqs_cost(metrics, events)
    assert cost["connected_users"] == 2
    assert cost["per_user_minute"] == 10.0
    assert cost["requests"]["receive"] == 30
    assert "active_polls" not in cost["requests"]


def test_summary_table_names_both_levels() -> None:
    level = {"sent": 3, "expected": 6, "delivered": 5, "lost": 1, "duplicated": 0,
             "reordered": 0, "unexpected": 0,
             "latency_ms": {"p50": 12.0, "p95": 30.0, "p99": 31.0, "max": 40.0}}  # fmt: skip
    text = summary_table({"wire": level, "user_view": {**level, "lost": 0}, "sends": {}})
    lost_row = next(line for line in text.splitlines() if line.startswith("lost"))
    assert lost_row.split() == ["lost", "1", "0"]
    assert "12 ms" in text
