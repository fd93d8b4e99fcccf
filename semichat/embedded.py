"""The embedded backend: a moto server (SQS and DynamoDB over real HTTP) on a loopback port.

`run_backend` is the `semichat backend` command: it serves moto in this process and prints its
endpoint as one JSON line. `embedded_backend` starts that command as a child process, so moto's
request threads never compete with the chat server's event loop for the GIL.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .settings import Settings

START_TIMEOUT_S = 60.0


def run_backend(settings: Settings, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve moto until SIGTERM or SIGINT, with semichat's tables created for `settings`."""
    import logging

    from moto.server import ThreadedMotoServer

    # One werkzeug access line per AWS call would drown the chat server's own log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    endpoint = f"http://{bound_host}:{bound_port}"
    asyncio.run(_provision(settings.with_overrides(endpoint_url=endpoint)))
    print(json.dumps({"endpoint": endpoint}), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    # No server.stop(): it would wait for moto's long polls (up to 20 s each) to run out, and
    # the serving thread is a daemon that ends with the process anyway.


async def _provision(settings: Settings) -> None:
    from .aws import open_clients
    from .provision import ensure_tables

    async with open_clients(settings) as clients:
        await ensure_tables(clients.dynamodb, settings.table_prefix)


@asynccontextmanager
async def embedded_backend(host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Start `semichat backend` as a child process; yields its endpoint URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "semichat",
        "backend",
        "--host",
        host,
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT_S)
        if not line:
            raise RuntimeError("embedded backend exited before printing its endpoint")
        yield json.loads(line)["endpoint"]
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@asynccontextmanager
async def with_backend(settings: Settings) -> AsyncIterator[Settings]:
    """The settings with the embedded backend started, when they ask for it and name none."""
    if settings.backend == "embedded" and not (settings.dynamodb_url and settings.sqs_url):
        async with embedded_backend(settings.host) as endpoint:
            yield settings.with_overrides(endpoint_url=endpoint)
    else:
        yield settings
