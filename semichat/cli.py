"""The `semichat` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from .app import create_app
from .embedded import with_backend
from .errors import ApiError
from .localstack import LocalstackUnavailable
from .logs import configure_logging
from .settings import BACKENDS, LOCALSTACK_DYNAMODB, Settings

log = logging.getLogger("semichat.cli")

PRINTABLE = ("tables", "policy", "cloudformation")


def _add_backend_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=BACKENDS, default=None, help="default: embedded")
    p.add_argument("--endpoint-url", help="one endpoint for both DynamoDB and SQS")
    p.add_argument("--dynamodb-endpoint", help="DynamoDB endpoint (overrides --endpoint-url)")
    p.add_argument("--sqs-endpoint", help="SQS endpoint (overrides --endpoint-url)")
    p.add_argument(
        "--localstack-endpoint", help="with --backend localstack; default http://127.0.0.1:4566"
    )
    p.add_argument(
        "--localstack-dynamodb",
        choices=LOCALSTACK_DYNAMODB,
        help="with --backend localstack and no --dynamodb-endpoint: DynamoDB from LocalStack or "
        "the embedded backend; auto (default) asks LocalStack's health check",
    )
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
    provision = sub.add_parser(
        "provision",
        help="create the tables (and users' queues), or print tables, IAM policy, CloudFormation",
    )
    _add_backend_flags(provision)
    provision.add_argument("--users", help="comma-separated user ids whose queues to create")
    provision.add_argument("--users-file", type=Path, help="user ids, one a line")
    provision.add_argument(
        "--print",
        dest="print_what",
        choices=PRINTABLE,
        help="print this (JSON) and create nothing",
    )
    provision.add_argument(
        "--preprovisioned",
        action="store_true",
        help="with --print policy: the policy for queues created ahead (no sqs:CreateQueue)",
    )
    provision.add_argument(
        "--account-id",
        default=os.environ.get("AWS_ACCOUNT_ID", "ACCOUNT_ID"),
        help="with --print policy: the account in the ARNs (default $AWS_ACCOUNT_ID)",
    )
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
        print(f"FAIL: {lost} (message, tab) pair(s) never reached an open tab's view")
        return 1
    return 0


def _backend_settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the flags of `_add_backend_flags`."""
    return Settings.from_env().with_overrides(
        backend=args.backend,
        endpoint_url=args.endpoint_url,
        dynamodb_endpoint=args.dynamodb_endpoint,
        sqs_endpoint=args.sqs_endpoint,
        localstack_endpoint=args.localstack_endpoint,
        localstack_dynamodb=args.localstack_dynamodb,
        region=args.region,
        table_prefix=args.table_prefix,
        queue_prefix=args.queue_prefix,
        routing=args.routing,
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    settings = _backend_settings(args).with_overrides(host=args.host, port=args.port)
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
            await _until_terminated()
        finally:
            await runner.cleanup()


async def _until_terminated() -> None:
    """Wait for SIGTERM or SIGINT. Turning SIGTERM into a normal return (instead of Python's
    default of dying on the spot) lets `with_backend` stop the backend it started."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def printable(what: str, settings: Settings, account_id: str, preprovisioned: bool) -> object:
    """The document `semichat provision --print WHAT` prints."""
    if what == "tables":
        from .provision import tables_document

        return tables_document(settings.table_prefix)
    if what == "policy":
        from .iam import server_policy

        return server_policy(
            region=settings.region,
            account=account_id,
            table_prefix=settings.table_prefix,
            queue_prefix=settings.queue_prefix,
            preprovisioned=preprovisioned,
        )
    from .cloudformation import template

    return template()


def dump_json(document: object) -> str:
    """The one JSON layout for printed and committed documents (stable, diff-friendly)."""
    return json.dumps(document, indent=2) + "\n"


async def provision_command(settings: Settings, users: list[str]) -> None:
    from .provisioner import provision

    async with with_backend(settings) as resolved:
        report = await provision(resolved, users)
    sys.stdout.write(
        dump_json(
            {
                "dynamodb": resolved.dynamodb_url,
                "sqs": resolved.sqs_url,
                "tablesCreated": report.tables_created,
                "queues": report.queues,
            }
        )
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "backend":
        from .embedded import run_backend

        run_backend(Settings.from_env(), args.host, args.port)
        return
    if args.command == "provision":
        _provision_main(args)
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
    except LocalstackUnavailable as exc:
        sys.exit(f"semichat: {exc}")


def _provision_main(args: argparse.Namespace) -> None:
    try:
        settings = _backend_settings(args)
        if args.print_what:
            sys.stdout.write(
                dump_json(
                    printable(args.print_what, settings, args.account_id, args.preprovisioned)
                )
            )
            return
        from .provisioner import parse_users

        users = parse_users(args.users, args.users_file)
        if settings.backend == "embedded" and not (settings.dynamodb_url and settings.sqs_url):
            sys.exit(
                "semichat: the embedded backend lives only as long as `semichat serve`; give "
                "--endpoint-url (e.g. of `semichat backend`) or choose --backend localstack|aws"
            )
        configure_logging("WARNING")
        asyncio.run(provision_command(settings, users))
    except (ValueError, OSError, ApiError, LocalstackUnavailable) as exc:
        sys.exit(f"semichat provision: {exc}")
