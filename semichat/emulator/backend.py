"""The embedded backend: a moto server (SQS and DynamoDB over real HTTP) on a loopback port.

`run_backend` is the `semichat backend` command: it serves moto in this process and prints its
endpoint as one JSON line. `embedded_backend` starts that command as a child process, so moto's
request threads never compete with the chat server's event loop for the GIL.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

from semichat import heap, processes
from semichat.aws.clients import open_clients
from semichat.aws.tables import ensure_tables
from semichat.emulator.persistence import keep_saving, load_data
from semichat.heap import freeze_startup_objects
from semichat.settings import Settings

START_TIMEOUT_S = 60.0
ORPHAN_CHECK_S = 1.0


def run_backend(
    settings: Settings, host: str = "127.0.0.1", port: int = 0, data_dir: str | None = None
) -> None:
    """Serve moto until SIGTERM or SIGINT, with semichat's tables created for `settings`; with
    `data_dir`, what was saved there is loaded first and saved again as it changes."""
    import logging

    from semichat.emulator import patches
    from semichat.emulator.patches.keepalive import serve_moto

    heap.limit_malloc_arenas()  # before moto's threads, each of which would get an arena
    patches.apply()
    # One werkzeug access line per AWS call would drown the chat server's own log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    server = serve_moto(host, port)
    endpoint = f"http://{host}:{server.server_port}"
    own = settings.with_overrides(endpoint_url=endpoint)
    asyncio.run(_create_tables(own))
    said: dict[str, object] = {"endpoint": endpoint, "dataDir": data_dir}
    if data_dir:
        said["restored"] = load_data(own, Path(data_dir))
    # moto's items are long-lived too, so its youngest generation keeps the default threshold.
    freeze_startup_objects()
    print(json.dumps(said), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=_stop_when_orphaned, args=(stop,), daemon=True).start()
    threading.Thread(target=heap.release_free_memory_in_thread, args=(stop,), daemon=True).start()
    heap.snapshot_heap_in_thread(stop)
    if data_dir:
        keep_saving(own, Path(data_dir), stop)  # returns after the save at stop
    stop.wait()
    # No server.stop(): it would wait for moto's long polls (up to 20 s each) to run out, and
    # the serving thread is a daemon that ends with the process anyway.


async def _create_tables(settings: Settings) -> None:
    async with open_clients(settings) as clients:
        await ensure_tables(clients.dynamodb, settings.table_prefix)


def _stop_when_orphaned(stop: threading.Event) -> None:
    """End with the parent: a parent killed outright (SIGKILL, a crash) cannot stop its backend,
    and an orphaned moto server would hold its port and memory until someone notices."""
    parent = os.getppid()
    while not stop.wait(ORPHAN_CHECK_S):
        if os.getppid() != parent:
            stop.set()


def start_backend_process(
    host: str = "127.0.0.1", timeout: float = START_TIMEOUT_S, stderr: IO[bytes] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`semichat backend` as a child process, for synchronous callers (tests, benchmarks,
    simulations); returns the process and its endpoint once the tables exist. Its stderr (moto's
    own tracebacks) goes to `stderr`, else to this process's."""
    proc, said = processes.start_child(_backend_args(host), timeout, stderr)
    return proc, str(said["endpoint"])


def stop_backend_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    processes.stop(proc, timeout)


def _backend_args(host: str, data_dir: str = "") -> list[str]:
    return [
        "backend",
        "--host",
        host,
        "--port",
        "0",
        *(["--data-dir", data_dir] if data_dir else []),
    ]


@asynccontextmanager
async def embedded_backend(host: str = "127.0.0.1", data_dir: str = "") -> AsyncIterator[str]:
    """Start `semichat backend` as a child process (keeping its data in `data_dir`, if given);
    yields its endpoint URL."""
    proc, said = await processes.start_child_async(_backend_args(host, data_dir), START_TIMEOUT_S)
    try:
        if said is None:
            raise RuntimeError("embedded backend exited before printing its endpoint")
        yield str(said["endpoint"])
    finally:
        await processes.stop_async([proc])
