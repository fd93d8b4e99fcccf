"""`semichat serve`: the app on a socket until SIGTERM or SIGINT, over a resolved backend."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import socket

from aiohttp import web
from botocore.exceptions import BotoCoreError, ClientError

from semichat.aws.embedded import with_backend
from semichat.server.app import create_app
from semichat.settings import Settings

log = logging.getLogger("semichat.serve")


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


async def serve(settings: Settings) -> None:
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
            site = web.TCPSite(runner, resolved.host, resolved.port)
            try:
                await site.start()
            except OSError as exc:
                raise OSError(
                    f"cannot listen on {resolved.host}:{resolved.port}: "
                    f"{exc.strerror or exc}; is another server there? choose another --port"
                ) from None
            log.info(
                "serving on http://%s:%s/ (backend %s, auth %s)",
                resolved.host,
                resolved.port,
                resolved.backend,
                resolved.auth,
                extra={"dynamodb": resolved.dynamodb_url, "sqs": resolved.sqs_url},
            )
            await until_terminated()
        finally:
            await runner.cleanup()


async def until_terminated() -> None:
    """Wait for SIGTERM or SIGINT. Turning SIGTERM into a normal return (instead of Python's
    default of dying on the spot) lets `with_backend` stop the backend it started."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
