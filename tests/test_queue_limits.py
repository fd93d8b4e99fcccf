"""The queue ramp against a real moto server: what ListQueues returns past 1,000 queues."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from semichat.emulator.backend import start_backend_process, stop_backend_process
from semichat.harness.queue_limits import Ramp, queues_needed, quota_hit, ramp

from .conftest import emulator_client

pytestmark = pytest.mark.backend


@pytest.fixture(scope="module")
def moto_sqs() -> Iterator[tuple[Any, int]]:
    proc, endpoint = start_backend_process()
    try:
        yield emulator_client("sqs", endpoint), proc.pid
    finally:
        stop_backend_process(proc)


def test_ramp_shows_listqueues_cut_at_1000_and_paging_finds_all(moto_sqs: Any) -> None:
    sqs, pid = moto_sqs
    steps = ramp(sqs, Ramp(queues=1100, step=550, concurrency=8), backend_pid=pid)
    assert list(steps["queues"]) == [550, 1100]
    assert list(steps["listed_unpaged"]) == [550, 1000]
    assert not steps["unpaged_next_token"].any()  # moto, like AWS: silently cut
    assert list(steps["listed_paged"]) == [550, 1100]
    assert steps["errors"].sum() == 0
    assert (steps["first_notification_ms"] > 0).all()
    assert (steps["backend_rss_mb"] > 10).all()


def test_queues_needed_follow_each_strategy() -> None:
    n = queues_needed(users=10_000, processes=3, shards=8)
    assert n["per_user_queue"] == n["preprovisioned"] == n["fifo"] == 10_000
    assert n["sharded"] == 8 and n["instance"] == 3


def test_users_past_the_queue_quota_get_a_json_503_naming_it() -> None:
    rows = quota_hit(quota=1, users=3)
    assert list(rows["status"]) == [200, 503, 503]
    assert rows["says"].iloc[0] == "event: ready"
    assert all("quota" in said and said.startswith("{") for said in rows["says"].iloc[1:])
