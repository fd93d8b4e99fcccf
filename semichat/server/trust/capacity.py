"""How many streams one process admits when `max_streams` is left at -1: from what a stream holds.

- A routing whose waiting stream holds a long poll of its own (per-user queues: `per_user_queue`,
  `preprovisioned`, `fifo`) holds one pooled connection to SQS per stream, so the cap sits under
  the pool (`max_pool_connections`, default 2,000) by `POOL_HEADROOM` for sends and history:
  1,500 by default.
- A routing whose streams are fed by the process's own dispatcher (`instance`, `sharded`) holds
  a socket and some memory per stream: the cap is the smaller of the open-files limit (raised to
  the hard limit at start, `raise_open_files_limit`) less a reserve, and the memory available at
  start over an assumed `STREAM_BYTES` per stream.

An explicit `max_streams` wins (0: no cap). The cap and its reason go into the start-up line.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

import psutil

from semichat.server.delivery.routing import stream_holds_poll
from semichat.settings import Settings

log = logging.getLogger("semichat.limits")

# Connections of the pool kept for sends, history and the strategy's own requests (a quarter of
# a pool smaller than 2,000).
POOL_HEADROOM = 500
# Open files kept for everything but client sockets: the pool's connections to the backend,
# log files, the interpreter's own. A quarter of the limit, at least 256.
FD_RESERVE_FRACTION = 0.25
FD_RESERVE_MIN = 256
# Assumed cost of one idle stream: measured 30.5 KB of server RSS with `instance` on moto
# (docs/performance.md, "Idle streams"), doubled for the buffers of a busy stream.
STREAM_BYTES = 64 * 1024
# Streams may take at most this share of the memory available at start.
MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class StreamCap:
    limit: int  # 0: none
    reason: str


def raise_open_files_limit() -> int:
    """Raise this process's soft open-files limit to its hard limit (as benchmarks do); the
    soft limit after. A hard limit of RLIM_INFINITY is left alone (Linux refuses it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard and hard != resource.RLIM_INFINITY:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit to %s: %s", hard, exc)
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return int(soft)


def stream_cap(settings: Settings, open_files: int | None = None) -> StreamCap:
    """The process's stream cap for these settings (`open_files`: the soft limit to assume;
    default this process's)."""
    if settings.max_streams >= 0:
        return StreamCap(settings.max_streams, "MAX_STREAMS set")
    if stream_holds_poll(settings.routing):
        pool = settings.max_pool_connections
        headroom = min(POOL_HEADROOM, pool // 4)
        return StreamCap(
            max(1, pool - headroom),
            f"a long poll per stream: {pool} pooled connections less {headroom}",
        )
    if open_files is None:
        open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    reserve = max(FD_RESERVE_MIN, int(open_files * FD_RESERVE_FRACTION))
    by_files = max(1, open_files - reserve)
    available = psutil.virtual_memory().available
    by_memory = max(1, int(available * MEMORY_SHARE) // STREAM_BYTES)
    if by_files <= by_memory:
        return StreamCap(by_files, f"open files: limit {open_files} less {reserve}")
    return StreamCap(
        by_memory,
        f"memory: half of {available >> 20} MB available at {STREAM_BYTES >> 10} KB a stream",
    )
