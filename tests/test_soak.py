"""The soak benchmark's pure parts: minutes, slopes and the flat criteria."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.soak import (
    latency_by_minute,
    minute_of,
    nothing_lost,
    p99_flat,
    rss_flat,
    slope_per_10_min,
)


def test_minutes_are_one_based_and_the_drain_is_one_more() -> None:
    assert minute_of(np.array([0.0, 59.9, 60.0, 179.0, 180.0, 400.0]), 3).tolist() == [
        1,
        1,
        2,
        3,
        4,
        4,
    ]


def test_slope_is_least_squares_per_ten_minutes() -> None:
    t = np.arange(0, 600, 5.0)
    values = 100 + t / 600 * 0.5
    # Noise symmetric in time leaves a least-squares slope where it was.
    noisy = values + np.where(np.abs(t - t.mean()) < 150, 1.0, -1.0)
    assert slope_per_10_min(t, noisy) == pytest.approx(0.5)
    # One high last sample doubles a slope through the endpoints, not the fit.
    values[-1] += 0.5
    assert (values[-1] - values[0]) / (t[-1] - t[0]) * 600 > 0.9
    assert slope_per_10_min(t, values) == pytest.approx(0.5, abs=0.03)
    values[10] = np.nan  # a missed sample is left out
    assert slope_per_10_min(t, values) == pytest.approx(0.5, abs=0.03)
    assert slope_per_10_min(t[:2], np.array([1.0, 2.0])) is None  # too few points
    assert slope_per_10_min(np.array([0.0, 10, 20]), np.ones(3)) is None  # under a minute


def samples(mb_per_10_min: float, minutes: int = 12) -> pd.DataFrame:
    t = np.arange(2.5, minutes * 60 + 8, 5.0)
    return pd.DataFrame({"t": t, "rss_server_mb": 80 + t / 600 * mb_per_10_min})


def test_rss_flat_judges_from_minute_five_and_dynamodb_only_informs() -> None:
    assert rss_flat(samples(0.2), 12, "server").word == "PASS"
    assert rss_flat(samples(3.0), 12, "server").word == "FAIL"
    # Growth before minute 5 (start-up) does not count.
    early = samples(0.0)
    early.loc[early["t"] < 240, "rss_server_mb"] = 40.0
    assert rss_flat(early, 12, "server").word == "PASS"
    assert rss_flat(samples(0.2, minutes=4), 4, "server").word == "SKIP"
    store = samples(30.0).rename(columns={"rss_server_mb": "rss_dynamodb_mb"})
    verdict = rss_flat(store, 12, "dynamodb", sends_per_10_min=6000)
    assert (verdict.word, verdict.failed) == ("INFO", False)
    assert "5.12 KB per ok send" in verdict.detail


def test_p99_flat_within_a_quarter_either_way() -> None:
    table = pd.DataFrame({"wire_p99": [900.0, 400.0, 420.0, 490.0]}, index=[1, 2, 3, 4])
    assert p99_flat(table, 3, "wire").word == "PASS"
    assert p99_flat(table, 4, "wire").word == "PASS"  # +22.5 %
    for last, word in ((501.0, "FAIL"), (300.0, "PASS"), (299.0, "FAIL")):
        table.loc[4, "wire_p99"] = last
        assert p99_flat(table, 4, "wire").word == word, last
    assert p99_flat(table, 2, "wire").word == "SKIP"  # minute 2 is the last
    assert p99_flat(table, 5, "wire").word == "SKIP"  # no deliveries in the last minute


def test_latency_buckets_the_checkers_delivered_pairs_by_first_receipt() -> None:
    pairs = pd.DataFrame(
        {
            "expected": [True, True, True, False, True],
            "deliveries": [1, 2, 1, 1, 0],
            "first_received_at": [1010.0, 1050.0, 1070.0, 1075.0, np.nan],
            "latency_ms": [100.0, 300.0, 50.0, 9999.0, np.nan],
        }
    )
    out = latency_by_minute(pairs, 1000.0, 3, "wire")
    assert out["wire_n"].to_dict() == {1: 2, 2: 1}
    assert out.loc[1, "wire_p50"] == 200.0
    assert out.loc[2, "wire_p99"] == 50.0


def test_nothing_lost_reads_the_view_and_the_settled_counters() -> None:
    results = {
        "user_view": {"lost": 0, "duplicated": 0, "expected": 9, "reordered": 0, "unexpected": 0},
        "wire": {"lost": 1},
    }
    settled = {"sqs": {"messages_received": 5, "messages_deleted": 4, "messages_released": 1}}
    assert nothing_lost(results, settled).word == "PASS"
    settled["sqs"]["unsettled"] = 1
    settled["sqs"]["messages_received"] = 6
    assert nothing_lost(results, settled).word == "FAIL"
