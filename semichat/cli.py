"""The `semichat` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from aiohttp import web

from .app import create_app
from .embedded import with_backend
from .logs import configure_logging
from .settings import BACKENDS, Settings

log = logging.getLogger("semichat.cli")

LOCALSTACK_ENDPOINT = "http://127.0.0.1:4566"


def _add_backend_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=BACKENDS, default=None, help="default: embedded")
    p.add_argument("--endpoint-url", help="one endpoint for both DynamoDB and SQS")
    p.add_argument("--dynamodb-endpoint", help="DynamoDB endpoint (overrides --endpoint-url)")
    p.add_argument("--sqs-endpoint", help="SQS endpoint (overrides --endpoint-url)")
    p.add_argument("--region")
    p.add_argument("--table-prefix")
    p.add_argument("--queue-prefix")
    p.add_argument("--routing")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semichat", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the chat API, the stream and the widget")
    serve.add_argument("--host", default=None, help="default: 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default: 8080")
    _add_backend_flags(serve)
    serve.add_argument("--log-level", default="INFO")

    backend = sub.add_parser(
        "backend", help="run the embedded backend (moto server) alone and print its endpoint"
    )
    backend.add_argument("--host", default="127.0.0.1")
    backend.add_argument("--port", type=int, default=0, help="0 picks a free port")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env().with_overrides(
        backend=args.backend,
        host=args.host,
        port=args.port,
        endpoint_url=args.endpoint_url,
        dynamodb_endpoint=args.dynamodb_endpoint,
        sqs_endpoint=args.sqs_endpoint,
        region=args.region,
        table_prefix=args.table_prefix,
        queue_prefix=args.queue_prefix,
        routing=args.routing,
    )
    if settings.backend == "localstack" and not (settings.sqs_url and settings.dynamodb_url):
        settings = settings.with_overrides(
            endpoint_url=settings.endpoint_url or LOCALSTACK_ENDPOINT
        )
    if settings.backend != "aws":
        # Emulators start empty: create the tables. Real AWS is provisioned ahead of time.
        settings = settings.with_overrides(create_tables=True)
    return settings


async def serve(settings: Settings) -> None:
    async with with_backend(settings) as resolved:
        app = create_app(resolved)
        # handler_cancellation: a client that disconnects cancels its stream's long poll at once.
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, resolved.host, resolved.port)
            await site.start()
            log.info(
                "serving on http://%s:%s/ (backend %s)",
                resolved.host,
                resolved.port,
                resolved.backend,
                extra={"dynamodb": resolved.dynamodb_url, "sqs": resolved.sqs_url},
            )
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "backend":
        from .embedded import run_backend

        run_backend(Settings.from_env(), args.host, args.port)
        return
    configure_logging(args.log_level)
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        sys.exit(f"semichat: {exc}")
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        pass
