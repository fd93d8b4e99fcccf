"""The process's stream cap follows what a stream of its routing holds (issue 25)."""

from __future__ import annotations

import resource

import pytest

from semichat.server.delivery.routing import stream_holds_poll
from semichat.server.trust import raise_open_files_limit, stream_cap
from semichat.server.trust.capacity import FD_RESERVE_MIN, STREAM_BYTES
from semichat.settings import ROUTINGS, Settings


@pytest.mark.parametrize("routing", ["per_user_queue", "preprovisioned", "fifo"])
def test_per_user_queues_keep_1500_under_the_pool_of_2000(routing: str) -> None:
    assert stream_cap(Settings(routing=routing), open_files=1_000_000).limit == 1500
    bigger_pool = Settings(routing=routing, max_pool_connections=5000)
    assert stream_cap(bigger_pool).limit == 4500


def test_instance_with_the_default_settings_holds_10000_streams_where_files_allow() -> None:
    cap = stream_cap(Settings(routing="instance"), open_files=20_000)
    assert cap.limit >= 10_000
    assert "open files" in cap.reason or "memory" in cap.reason


def test_instance_is_capped_by_a_small_open_files_limit() -> None:
    cap = stream_cap(Settings(routing="instance"), open_files=1024)
    assert cap.limit == 1024 - FD_RESERVE_MIN
    assert "open files" in cap.reason


def test_instance_is_capped_by_memory_when_files_are_plenty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Memory:
        available = 100 * STREAM_BYTES  # room for 50 streams at half of it

    monkeypatch.setattr("semichat.server.trust.capacity.psutil.virtual_memory", Memory)
    cap = stream_cap(Settings(routing="instance"), open_files=1_000_000)
    assert cap.limit == 50
    assert "memory" in cap.reason


@pytest.mark.parametrize("routing", ROUTINGS)
def test_a_setting_wins_whatever_the_routing(routing: str) -> None:
    assert stream_cap(Settings(routing=routing, max_streams=7)).limit == 7
    assert stream_cap(Settings(routing=routing, max_streams=0)).limit == 0


def test_what_each_routing_holds_per_stream() -> None:
    held = {r: stream_holds_poll(r) for r in ROUTINGS}
    assert held == {
        "per_user_queue": True,
        "preprovisioned": True,
        "fifo": True,
        "sharded": False,
        "instance": False,
    }


def test_the_open_files_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        if hard != resource.RLIM_INFINITY and soft > 64:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft - 1, hard))
        raised = raise_open_files_limit()
        assert raised == (hard if hard != resource.RLIM_INFINITY else soft)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
