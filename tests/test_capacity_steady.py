"""Latency after a run's warm-up (`semichat/model/steady.py`): the same sends on both sides."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from semichat.model.steady import percentiles_ms, run_percentiles_ms, warmup_s
from semichat.model.validation import validate

KEPT = Path(__file__).parent / "data" / "capacity" / "per_user_queue-100-steady"


def test_the_warm_up_is_the_spawn_then_one_send_interval() -> None:
    assert warmup_s(spawn_s=2.0, send_interval_s=2.0) == 4.0


def test_only_sends_started_after_the_warm_up_count() -> None:
    # Slow sends at the start (a cold start) leave the tail once they are left out.
    latency = [1.0] * 5 + [0.01] * 95
    sent = [0.5] * 5 + [5.0] * 95
    assert percentiles_ms(latency, sent, 0.0)["99"] == pytest.approx(1000.0)
    assert percentiles_ms(latency, sent, 4.0) == {"50": 10.0, "99": 10.0}
    assert percentiles_ms(latency, sent, 10.0) == {}


def test_a_kept_runs_figures_are_read_for_its_own_warm_up_only(tmp_path: Path) -> None:
    kept = json.loads((KEPT / "client_percentiles.json").read_text())["steady"]
    assert run_percentiles_ms(KEPT, kept["from_s"])["user_view"] == kept["user_view"]
    # Kept with another warm-up and without events: nothing, and validate judges the whole run.
    assert run_percentiles_ms(KEPT, kept["from_s"] + 1) == {}
    old = tmp_path / "old"
    shutil.copytree(KEPT, old)
    client = json.loads((old / "client_percentiles.json").read_text())
    del client["steady"]
    (old / "client_percentiles.json").write_text(json.dumps(client))
    figures = [r.figure for r in validate(old, replications=1)]
    assert "user_view p99 (ms)" in figures
    assert not any("whole run" in f for f in figures)


def test_validate_judges_latency_after_the_warm_up_and_prints_the_whole_runs_beside() -> None:
    rows = {r.figure: r for r in validate(KEPT, replications=1)}
    kept = json.loads((KEPT / "client_percentiles.json").read_text())["steady"]
    assert rows["latency from (s after the start, input)"].model == kept["from_s"]
    assert rows["user_view p99 (ms)"].measured == kept["user_view"]["99"]
    whole = json.loads((KEPT / "results.json").read_text())["user_view"]["latency_ms"]["p99"]
    assert rows["user_view p99, whole run (ms)"].measured == whole


def test_a_quantile_falling_to_zero_is_never_negative() -> None:
    """A run's overheads (client time less modelled backend time, per percentile) can fall
    between percentiles; interpolated down to 0 ms they rounded to -3.6e-15, and SimPy
    refused the delay (a 1,000-user run's send overhead, these points)."""
    from semichat.aws.latency import Distribution

    points = {"5": 0.0, "25": 7.299394828871542, "50": 30.47586704392205, "75": 0.0}
    assert Distribution.from_percentiles(points).quantile(75.0) == 0.0
