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


_OLD_GARBAGE = """
import gc, json, weakref
import botocore.session
from semichat.heap import freeze_startup_objects
startup = [[i] for i in range(300_000)]  # a server's worth of objects alive at start
freeze_startup_objects()
class Node:
    pass
nodes = [Node() for _ in range(1_000)]
for node in nodes:
    node.self = node  # a cycle: only the collector frees it
refs = [weakref.ref(node) for node in nodes]
gc.collect(1)  # the nodes survive the younger generations into the oldest one
del nodes, node
full_before = gc.get_stats()[2]["collections"]
for _ in range(500_000):  # cyclic garbage of its own drives the automatic collections
    churn = []
    churn.append(churn)
del churn
alive = sum(ref() is not None for ref in refs)
print(json.dumps([alive, gc.get_stats()[2]["collections"] - full_before]))
"""


def test_cyclic_garbage_that_reached_the_oldest_generation_is_collected_after_freezing() -> None:
    """Without a collection after freezing, CPython waited for a quarter of the startup objects
    to reach the oldest generation before a full collection: the soak's server grew about 1 MB
    per 10 minutes of such garbage."""
    out = subprocess.run(
        [sys.executable, "-c", _OLD_GARBAGE], capture_output=True, text=True, check=True
    ).stdout
    alive, full_collections = json.loads(out)
    assert full_collections > 0
    assert alive == 0


def test_glibc_gives_back_free_memory_and_caps_its_arenas() -> None:
    """On glibc (these machines, the container image) both calls take effect; elsewhere they
    say they did nothing."""
    import platform

    from semichat import heap

    on_glibc = platform.libc_ver()[0] == "glibc"
    assert heap.release_free_memory() is on_glibc
    assert heap.limit_malloc_arenas() is on_glibc


def test_the_periodic_release_first_collects_the_oldest_generations_cyclic_garbage() -> None:
    import gc
    import weakref

    class Node:
        self: object

    gc.disable()  # no automatic collection of this process's own in between
    try:
        nodes = [Node() for _ in range(100)]
        for node in nodes:
            node.self = node
        refs = [weakref.ref(node) for node in nodes]
        gc.collect(1)  # survivors of the younger generations: now in the oldest
        del nodes, node
        assert all(ref() is not None for ref in refs)  # garbage, but not collected yet
        heap.collect_and_release()
        assert all(ref() is None for ref in refs)
    finally:
        gc.enable()


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
