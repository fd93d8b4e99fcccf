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
    sim = sub.add_parser(
        "simulate", help="run a Locust scenario, check deliveries, write a run directory"
    )
    from .simulate import SCENARIO_DEFAULTS

    sim.add_argument("--scenario", choices=sorted(SCENARIO_DEFAULTS), default="chat")
    sim.add_argument("--users", type=int, default=10)
    sim.add_argument("--duration", type=float, default=30.0, help="seconds of sending")
    sim.add_argument("--backend", choices=BACKENDS, default="embedded")
    sim.add_argument("--target", help="an already running server; none is started")
    sim.add_argument("--out", default="runs", help="where run directories go")
    sim.add_argument("--spawn-rate", type=float, default=0.0)
    sim.add_argument("--processes", type=int, default=1, help="Locust worker processes")
    sim.add_argument("--drain", type=float, default=8.0, help="seconds of listening after")
    sim.add_argument("--grace", type=float, default=5.0)
    sim.add_argument("--conversation-size", type=int)
    sim.add_argument("--send-interval", type=float, help="mean seconds between a user's sends")
    sim.add_argument("--tabs", type=int, help="streams per user")
    sim.add_argument("--cut-min", type=float, help="reconnect: shortest stream life (s)")
    sim.add_argument("--cut-max", type=float, help="reconnect: longest stream life (s)")
    return parser


def simulate_from_args(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from .loadgen.config import LoadConfig
    from .report import summary_table
    from .simulate import SCENARIO_DEFAULTS, SimulationParams, simulate

    knobs = {
        "conversation_size": args.conversation_size,
        "send_interval": args.send_interval,
        "tabs": args.tabs,
        "cut_min": args.cut_min,
        "cut_max": args.cut_max,
    }
    load = replace(
        LoadConfig(),
        **SCENARIO_DEFAULTS[args.scenario],
        **{k: v for k, v in knobs.items() if v is not None},
    )
    params = SimulationParams(
        scenario=args.scenario,
        users=args.users,
        duration=args.duration,
        backend=args.backend,
        target=args.target,
        spawn_rate=args.spawn_rate,
        processes=args.processes,
        drain=args.drain,
        grace=args.grace,
        load=load,
    )
    print(f"semichat simulate: {args.scenario}, {args.users} users, {args.duration:.0f} s")
    run_dir, results = simulate(params, Path(args.out))
    print(summary_table(results))
    print(f"run directory: {run_dir}")
    lost = results["user_view"]["lost"]
    if lost:
        print(f"FAIL: {lost} message(s) never reached a connected user's view")
        return 1
    return 0


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
    if args.command == "simulate":
        sys.exit(simulate_from_args(args))
    configure_logging(args.log_level)
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        sys.exit(f"semichat: {exc}")
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        pass
