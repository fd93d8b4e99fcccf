"""Garbage collection for long-running processes: what is loaded at start is never collected.

A server process imports botocore's service models, moto's backends and the rest: hundreds of
thousands of objects that live as long as the process. Python's full collections walk them all
again and again: in `semichat serve` at 100 chatting users, collections took 1.5 s of its 23 s
of CPU, and each full one (every few seconds) paused every request for 60 to 75 ms, in the
backend processes too. Frozen after start, they are no longer walked; and a server answering
many small requests allocates quickly, so the youngest generation is collected less often.
After both, the server's collections took 0.25 s in the same run.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import threading

# Allocations between collections of the youngest generation (CPython's default: 700). Each
# request makes thousands of short-lived objects, most freed by reference counting anyway.
SERVER_GEN0_THRESHOLD = 10_000


def freeze_startup_objects(gen0_threshold: int | None = None) -> int:
    """Collect once, then move every object alive now out of the collector's reach; optionally
    collect the youngest generation less often. Returns the number of objects frozen."""
    gc.collect()
    gc.freeze()
    # CPython starts a full collection only once the objects promoted to the oldest generation
    # since the last one exceed a quarter of the objects that survived it (`long_lived_total`,
    # which freezing does not reset): after the collection above, a quarter of every startup
    # object, so cyclic garbage that reached the oldest generation was never collected, about
    # 1 MB of the server's RSS per 10 minutes of the soak. A collection with nothing left
    # unfrozen sets that baseline to the objects made since start.
    gc.collect()
    if gen0_threshold is not None:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, gen1, gen2)
    return gc.get_freeze_count()


# glibc's malloc, below Python's own allocator: what it keeps after Python frees.
M_ARENA_MAX = -8  # mallopt's parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MALLOC_ARENAS = 2
# glibc's default (128 KiB), held fixed: by default each freed mmapped block raises the threshold
# to its size (up to 32 MiB), so that later blocks of that size come from the heap and stay there.
MMAP_THRESHOLD = 128 * 1024
TRIM_INTERVAL_S = 60.0


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None  # not glibc (macOS, musl): nothing to tune
    return libc if hasattr(libc, "malloc_trim") else None


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """At most `arenas` malloc arenas: glibc gives each thread that allocates one of its own (up
    to 8 per core), and freed memory stays in the arena it came from. Call before threads start
    (moto serves each connection on a thread)."""
    libc = _libc()
    if libc is None or not libc.mallopt(M_ARENA_MAX, arenas):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def release_free_memory() -> bool:
    """Give the operating system back the free pages glibc holds. Without it, the server's RSS
    grew about 1 MB a minute under the soak (`benchmarks/soak.py`: 20 users, streams cut every
    2 to 6 s) while the objects Python tracks stayed flat (about 21,000 after each full
    collection): memory freed by Python, kept by malloc."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))


def collect_and_release() -> None:
    """A full collection, then `release_free_memory`. With the startup objects frozen, a full
    collection walks only what was made since, a few thousand objects; left to CPython's
    thresholds, one came every 20 minutes or so at the server's `SERVER_GEN0_THRESHOLD`, and
    the cyclic garbage that reached the oldest generation meanwhile held about 1 MB of RSS
    per 10 minutes of the soak (docs/performance.md)."""
    gc.collect()
    release_free_memory()


async def release_free_memory_periodically(interval_s: float = TRIM_INTERVAL_S) -> None:
    """For an event loop's life: `collect_and_release` every `interval_s`."""
    while True:
        await asyncio.sleep(interval_s)
        collect_and_release()


def release_free_memory_in_thread(
    stop: threading.Event, interval_s: float = TRIM_INTERVAL_S
) -> None:
    """The same for a process without an event loop, until `stop` is set."""
    while not stop.wait(interval_s):
        collect_and_release()


# A diagnostic, off unless asked: where a long run's heap grows. `semichat serve` and `semichat
# backend` read it from the environment, so a benchmark sets it for the processes it starts.
SNAPSHOTS_ENV = "SEMICHAT_HEAP_SNAPSHOTS"
SNAPSHOT_INTERVAL_S = 60.0
SNAPSHOT_FRAMES = 12


def snapshot_heap_in_thread(stop: threading.Event, interval_s: float = SNAPSHOT_INTERVAL_S) -> bool:
    """When `SEMICHAT_HEAP_SNAPSHOTS` names a directory: trace allocations from now on and,
    every `interval_s` until `stop` is set, collect garbage and dump a tracemalloc snapshot to
    `<dir>/<pid>/<n>.snap`, from a daemon thread. Compare two with
    `Snapshot.load(b).compare_to(Snapshot.load(a), "traceback")`: what grew, by where it was
    allocated (how moto's instance lists were found). Tracing slows the process by about a
    third, so its latencies are not the run's. Returns whether it started."""
    import os
    import tracemalloc
    from pathlib import Path

    directory = os.environ.get(SNAPSHOTS_ENV)
    if not directory:
        return False
    out = Path(directory) / str(os.getpid())
    out.mkdir(parents=True, exist_ok=True)
    tracemalloc.start(SNAPSHOT_FRAMES)

    def dump() -> None:
        n = 0
        while not stop.wait(interval_s):
            gc.collect()
            try:
                snapshot = tracemalloc.take_snapshot()
            except RuntimeError:
                return  # tracing was stopped by its owner: the diagnosis is over
            snapshot.dump(str(out / f"{n:03d}.snap"))
            n += 1

    threading.Thread(target=dump, name="heap-snapshots", daemon=True).start()
    return True
