"""The embedded backend: a moto server (SQS and DynamoDB over real HTTP) on a loopback port.

`run_backend` is the `semichat backend` command: it serves moto in this process and prints its
endpoint as one JSON line. `embedded_backend` starts that command as a child process, so moto's
request threads never compete with the chat server's event loop for the GIL.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import IO

from semichat.aws.provisioning import provision
from semichat.heap import freeze_startup_objects
from semichat.settings import Settings

START_TIMEOUT_S = 60.0
ORPHAN_CHECK_S = 1.0


def run_backend(settings: Settings, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve moto until SIGTERM or SIGINT, with semichat's tables created for `settings`."""
    import logging

    from semichat.aws import moto_overheads, moto_patches
    from semichat.aws.moto_atomic import make_conditional_writes_atomic
    from semichat.aws.moto_keepalive import serve_moto

    moto_patches.apply()
    moto_overheads.apply()
    # After the patches, so that the lock covers a patched transaction's snapshot and restore.
    make_conditional_writes_atomic()
    # One werkzeug access line per AWS call would drown the chat server's own log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    server = serve_moto(host, port)
    endpoint = f"http://{host}:{server.server_port}"
    asyncio.run(provision(settings.with_overrides(endpoint_url=endpoint)))
    # moto's items are long-lived too, so its youngest generation keeps the default threshold.
    freeze_startup_objects()
    print(json.dumps({"endpoint": endpoint}), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=_stop_when_orphaned, args=(stop,), daemon=True).start()
    stop.wait()
    # No server.stop(): it would wait for moto's long polls (up to 20 s each) to run out, and
    # the serving thread is a daemon that ends with the process anyway.


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
    proc = subprocess.Popen(
        [sys.executable, "-m", "semichat", "backend", "--host", host, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=stderr,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else b""
    if not line:
        stop_backend_process(proc)
        raise RuntimeError("embedded backend did not print its endpoint")
    return proc, json.loads(line)["endpoint"]


def stop_backend_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


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
    """The settings resolved to a concrete endpoint per service, with whatever that needs started.

    - embedded: without endpoints, start the embedded backend for both services.
    - localstack: SQS from LocalStack (`localstack_endpoint`) unless `sqs_endpoint` says
      otherwise; DynamoDB from `dynamodb_endpoint` if given, else LocalStack's own when it runs
      one, else the embedded backend (host mode). See `localstack.dynamodb_endpoint`.
    - aws: as given (None is the AWS default endpoint).
    """
    if settings.backend == "embedded" and not (settings.dynamodb_url and settings.sqs_url):
        async with embedded_backend(settings.host) as endpoint:
            yield settings.with_overrides(endpoint_url=endpoint)
    elif settings.backend == "localstack":
        from semichat.aws.localstack import dynamodb_endpoint

        resolved = settings.with_overrides(
            sqs_endpoint=settings.sqs_url or settings.localstack_endpoint
        )
        if resolved.dynamodb_url:
            yield resolved
            return
        dynamodb = await dynamodb_endpoint(resolved)
        if dynamodb is not None:
            yield resolved.with_overrides(dynamodb_endpoint=dynamodb)
            return
        async with embedded_backend(settings.host) as endpoint:
            yield resolved.with_overrides(dynamodb_endpoint=endpoint)
    else:
        yield settings
