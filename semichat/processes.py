"""Child processes of semichat's own commands (`semichat backend`, `semichat serve`): how one is
started, how it tells its parent that it is ready, and how it is stopped.

A child that is ready prints one JSON line on stdout (the backend its endpoint, a supervised
server its pid). Stopping is the same everywhere: a signal (SIGTERM, or SIGINT for a process
that handles it as Ctrl-C), a bounded wait, then SIGKILL and a wait for the kernel to reap it.
"""

from __future__ import annotations

import asyncio
import json
import select
import signal
import subprocess
import sys
from collections.abc import Mapping
from typing import IO, Any

STOP_TIMEOUT_S = 10.0
# A killed server holding 10,000 streams took over 5 s to be reaped (its sockets and 370 MB
# torn down by the kernel, `bench_streams` at N=10,000): it is dying, so wait for it.
REAP_TIMEOUT_S = 60.0


def unwind_on_sigterm() -> None:
    """In a command that starts processes (`semichat simulate`, the benchmarks): SIGTERM unwinds
    as Ctrl-C does, so that its `finally` blocks stop the server, backends and Locust it started.
    Python's default for SIGTERM ends the process at once, and they outlived it (a soak stopped
    by `kill` left its server and Locust running)."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def semichat_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "semichat", *args]


def start_child(
    args: list[str], timeout: float, stderr: IO[bytes] | None = None
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """`semichat ARGS` as a child; returns it and the JSON line it printed once ready. A child
    that exits or says nothing within `timeout` is stopped and raises RuntimeError."""
    proc = subprocess.Popen(semichat_command(*args), stdout=subprocess.PIPE, stderr=stderr)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else b""
    if not line:
        stop(proc)
        raise RuntimeError(f"`semichat {' '.join(args)}` did not say it was ready")
    return proc, json.loads(line)


def stop(
    proc: subprocess.Popen[bytes],
    timeout: float = STOP_TIMEOUT_S,
    sig: signal.Signals = signal.SIGTERM,
) -> None:
    """Signal, wait up to `timeout`, then SIGKILL and wait for it to be reaped."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(REAP_TIMEOUT_S)


async def start_child_async(
    args: list[str], ready_within: float, env: Mapping[str, str] | None = None
) -> tuple[asyncio.subprocess.Process, dict[str, Any] | None]:
    """As `start_child`, for an event loop; the line is None if the child exited (or stayed
    silent past `ready_within`) without saying it was ready. The caller stops it."""
    proc = await asyncio.create_subprocess_exec(
        *semichat_command(*args), stdout=asyncio.subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), ready_within)
    except TimeoutError:
        line = b""
    return proc, json.loads(line) if line else None


async def stop_async(
    procs: list[asyncio.subprocess.Process], grace: float = STOP_TIMEOUT_S
) -> list[asyncio.subprocess.Process]:
    """SIGTERM each, wait up to `grace` for all of them, SIGKILL the rest; returns the
    processes that had to be killed."""
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    waits = [asyncio.create_task(p.wait()) for p in procs]
    if not waits:
        return []
    _, pending = await asyncio.wait(waits, timeout=grace)
    killed = [p for p in procs if p.returncode is None]
    for proc in killed:
        proc.kill()
    if pending:
        await asyncio.wait(pending, timeout=REAP_TIMEOUT_S)
    return killed
