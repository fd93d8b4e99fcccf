"""`semichat serve`: the app on a socket until SIGTERM or SIGINT, over a resolved backend."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable

from aiohttp import web
from botocore.exceptions import BotoCoreError, ClientError

from semichat import heap
from semichat.backends import with_backend
from semichat.heap import SERVER_GEN0_THRESHOLD, freeze_startup_objects
from semichat.server.api.app import create_app
from semichat.server.api.appkeys import STREAM_SLOTS
from semichat.server.trust import raise_open_files_limit
from semichat.settings import Settings

log = logging.getLogger("semichat.serve")

ORPHAN_CHECK_S = 1.0


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback address (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


async def serve(
    settings: Settings,
    reuse_port: bool = False,
    supervisor_pid: int | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT (or until `supervisor_pid` is no longer the parent).
    `reuse_port`: bind with SO_REUSEPORT, as one of several processes on one port (the kernel
    spreads connections among them)."""
    heap.limit_malloc_arenas()
    # Each stream is a socket: the soft limit (often 1,024) would cap streams long before memory.
    open_files = raise_open_files_limit()
    trimming: asyncio.Task[None] | None = None
    snapshots_done = threading.Event()
    async with with_backend(settings) as resolved:
        app = create_app(resolved)
        # handler_cancellation: a client that disconnects cancels its stream's long poll at once.
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        try:
            await runner.setup()
        except (BotoCoreError, ClientError) as exc:
            raise OSError(
                f"the backend did not answer at start ({exc}); check --backend and the endpoints"
            ) from None
        try:
            site = web.TCPSite(runner, resolved.host, resolved.port, reuse_port=reuse_port or None)
            try:
                await site.start()
            except OSError as exc:
                raise OSError(
                    f"cannot listen on {resolved.host}:{resolved.port}: "
                    f"{exc.strerror or exc}; is another server there? choose another --port"
                ) from None
            # With --port 0 the kernel chose: say the port it gave, for whoever reads the log.
            port = runner.addresses[0][1]
            cap = app[STREAM_SLOTS].cap
            log.info(
                "serving on http://%s:%s/ (backend %s: %s; auth %s, routing %s, at most %s "
                "streams)",
                resolved.host,
                port,
                resolved.backend,
                data_lifetime(settings, resolved),
                resolved.auth,
                resolved.routing,
                cap.limit or "unlimited",
                extra={
                    "dynamodb": resolved.dynamodb_url,
                    "sqs": resolved.sqs_url,
                    "pid": os.getpid(),
                    "port": port,
                    "maxStreams": cap.limit,
                    "maxStreamsFrom": cap.reason,
                    "openFiles": open_files,
                    "dataDir": resolved.data_dir or None,
                },
            )
            freeze_startup_objects(SERVER_GEN0_THRESHOLD)
            trimming = asyncio.create_task(heap.release_free_memory_periodically())
            heap.snapshot_heap_in_thread(snapshots_done)
            if on_ready is not None:
                on_ready()
            await until_terminated(supervisor_pid)
        finally:
            snapshots_done.set()
            if trimming is not None:
                trimming.cancel()
            await runner.cleanup()


def data_lifetime(given: Settings, resolved: Settings) -> str:
    """Where the chat's data lives and how long, for the start-up line: the embedded backend
    keeps it in memory unless `--data-dir` says where to keep it."""
    if given.backend == "aws":
        return "data in AWS"
    embedded = (
        "data kept in " + given.data_dir
        if given.data_dir
        else ("data in memory only, gone when serve stops (--data-dir DIR keeps it)")
    )
    if given.backend == "embedded":
        return embedded if not (given.dynamodb_url and given.sqs_url) else "data at the endpoints"
    if resolved.dynamodb_url != resolved.localstack_endpoint and not given.dynamodb_url:
        return "queues in LocalStack, DynamoDB embedded: its data in memory only"
    return "data in LocalStack, kept across its restarts only with its PERSISTENCE"


async def until_terminated(parent_pid: int | None = None) -> None:
    """Wait for SIGTERM or SIGINT. Turning SIGTERM into a normal return (instead of Python's
    default of dying on the spot) lets `with_backend` stop the backend it started. With
    `parent_pid`, also return once that process is no longer the parent: a supervisor killed
    outright (SIGKILL) cannot stop its children, which would hold the port as orphans."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watch = asyncio.create_task(_watch_parent(parent_pid, stop)) if parent_pid else None
    try:
        await stop.wait()
    finally:
        if watch is not None:
            watch.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    while True:  # nothing to wait on: a process learns of its parent's death only by asking
        if os.getppid() != parent_pid:
            break
        await asyncio.sleep(ORPHAN_CHECK_S)
    log.warning("the supervisor %s is gone; stopping", parent_pid)
    stop.set()
