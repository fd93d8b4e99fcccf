"""`semichat.heap`: objects alive at start leave the collector's reach (in a child process, so
that this one's collector is left as it was)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from semichat import heap

from .waiting import wait_for

_FREEZE = """
import gc, json
import botocore.session
from semichat.heap import freeze_startup_objects
before = gc.get_freeze_count()
frozen = freeze_startup_objects(12_345)
later = [object() for _ in range(10)]
print(json.dumps([before, frozen, gc.get_freeze_count(), gc.get_threshold()]))
"""


def test_objects_alive_at_start_are_frozen_and_the_youngest_generation_waits_longer() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _FREEZE], capture_output=True, text=True, check=True
    ).stdout
    before, frozen, after, threshold = json.loads(out)
    assert before == 0 and frozen > 10_000  # botocore alone brings tens of thousands
    assert after == frozen  # objects made later stay collectable
    assert threshold[0] == 12_345 and threshold[1:] == [10, 10]


def test_glibc_gives_back_free_memory_and_caps_its_arenas() -> None:
    """On glibc (these machines, the container image) both calls take effect; elsewhere they
    say they did nothing."""
    import platform

    from semichat import heap

    on_glibc = platform.libc_ver()[0] == "glibc"
    assert heap.release_free_memory() is on_glibc
    assert heap.limit_malloc_arenas() is on_glibc


async def test_the_server_releases_free_memory_on_its_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from semichat import heap

    three = asyncio.Event()
    calls: list[int] = []

    def release() -> bool:
        calls.append(1)
        if len(calls) == 3:
            three.set()
        return True

    monkeypatch.setattr(heap, "release_free_memory", release)
    task = asyncio.create_task(heap.release_free_memory_periodically(interval_s=0.01))
    await asyncio.wait_for(three.wait(), 10)
    task.cancel()


def test_heap_snapshots_are_dumped_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tracemalloc

    stop = threading.Event()
    monkeypatch.delenv(heap.SNAPSHOTS_ENV, raising=False)
    assert not heap.snapshot_heap_in_thread(stop, interval_s=0.01)
    monkeypatch.setenv(heap.SNAPSHOTS_ENV, str(tmp_path))
    try:
        assert heap.snapshot_heap_in_thread(stop, interval_s=0.01)
        asyncio.run(wait_for(lambda: list(tmp_path.glob("*/001.snap")), 60, "second snapshot"))
    finally:
        stop.set()
        tracemalloc.stop()
    [first] = tmp_path.glob("*/000.snap")
    assert tracemalloc.Snapshot.load(str(first)).traces
