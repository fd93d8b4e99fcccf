"""`semichat serve`, `backend`, `provision` and `token`: the server and its operator tools.

Heavy imports (the server, the AWS tools) happen inside each subcommand, so `semichat --help`
and a mistyped flag answer at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

from semichat.cli.flags import (
    UserError,
    add_auth_flags,
    add_backend_flags,
    add_faults_flag,
    add_token_flags,
    backend_settings,
    settings_from_args,
)
from semichat.cli.help import add_command
from semichat.settings import Settings

log = logging.getLogger("semichat.cli")

PRINTABLE = ("tables", "policy", "cloudformation")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for add in (_add_serve, _add_backend, _add_provision, _add_token):
        add(sub)


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "serve")
    p.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="TCP port to listen on (default 8080; 0 picks a free one and logs it)",
    )
    p.add_argument(
        "--reuse-port",
        action="store_true",
        help="share the port with a process that already holds it the same way (a test "
        "harness that reserves the port before the server binds)",
    )
    add_backend_flags(p)
    add_auth_flags(p)
    add_faults_flag(p)
    p.add_argument(
        "--processes",
        type=int,
        default=None,
        help="server processes sharing one port, over one backend (default 1)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="with the embedded backend: keep its tables and queues in this folder across "
        "restarts (default: in memory only, gone when serve stops)",
    )
    # Set by `serve --processes N` on its children: bind with SO_REUSEPORT, print when serving,
    # stop when that process is gone.
    p.add_argument("--supervisor-pid", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    p.set_defaults(func=serve_command)


def _add_backend(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "backend")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    p.add_argument("--data-dir", default=None, help="keep tables and queues here across restarts")
    p.set_defaults(func=backend_command)


def _add_provision(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "provision")
    add_backend_flags(p)
    p.add_argument("--users", help="comma-separated user ids whose queues to create")
    p.add_argument("--users-file", type=Path, help="a file of user ids, one a line")
    p.add_argument(
        "--print", dest="print_what", choices=PRINTABLE, help="print this (JSON); create nothing"
    )
    p.add_argument(
        "--preprovisioned",
        action="store_true",
        help="with --print policy: the policy for queues created ahead (no sqs:CreateQueue)",
    )
    p.add_argument(
        "--account-id",
        default=os.environ.get("AWS_ACCOUNT_ID", "ACCOUNT_ID"),
        help="with --print policy: the AWS account in the ARNs (default $AWS_ACCOUNT_ID)",
    )
    p.set_defaults(func=provision_command)


def _add_token(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "token")
    p.add_argument("user", help="the user id the token carries")
    p.add_argument(
        "--ttl",
        type=float,
        default=None,
        help="seconds until it expires (default 3600; negative: already expired, for tests)",
    )
    add_token_flags(p)
    p.set_defaults(func=token_command)


def check_demo_auth_address(settings: Settings) -> None:
    """Refuse demo identity on an address others can reach, unless asked for by name."""
    from semichat.server.process.serve import is_loopback

    if (
        settings.auth == "demo"
        and not settings.insecure_demo_auth_on_public_address
        and not is_loopback(settings.host)
    ):
        raise UserError(
            f"--auth demo trusts whatever user id a caller claims, so it listens on loopback "
            f"only, not {settings.host}; use --auth token, or pass "
            "--insecure-demo-auth-on-public-address if everyone who can reach it may be anyone"
        )


def check_data_dir(settings: Settings) -> None:
    """--data-dir is the embedded backend's: LocalStack and AWS keep data their own way."""
    embedded = settings.backend == "embedded" and not (settings.dynamodb_url and settings.sqs_url)
    if settings.data_dir and not embedded:
        raise UserError(
            "--data-dir keeps the embedded backend's data; with --backend "
            f"{settings.backend} or given endpoints the data lives there (LocalStack: its own "
            "PERSISTENCE setting)"
        )


def serve_command(args: argparse.Namespace) -> int:
    from semichat.server.api.logs import configure_logging
    from semichat.server.faults import FaultSpec
    from semichat.server.process.serve import serve

    settings = settings_from_args(args).with_overrides(data_dir=args.data_dir)
    check_demo_auth_address(settings)
    check_data_dir(settings)
    FaultSpec.parse(settings.faults)  # a bad spec is refused before anything starts
    if settings.processes < 1:
        raise UserError("--processes must be at least 1")
    configure_logging(args.log_level)
    try:
        if args.supervisor_pid:
            asyncio.run(serve(settings, True, args.supervisor_pid, _say_serving))
        elif settings.processes > 1:
            from semichat.server.process.supervisor import supervise

            asyncio.run(supervise(settings, args.log_level))
        else:
            asyncio.run(serve(settings, reuse_port=args.reuse_port))
    except KeyboardInterrupt:
        pass
    return 0


def _say_serving() -> None:
    """A child of `serve --processes N` tells its supervisor, on stdout, that it serves."""
    print(json.dumps({"pid": os.getpid()}), flush=True)


def backend_command(args: argparse.Namespace) -> int:
    from semichat.emulator.backend import run_backend

    run_backend(Settings.from_env(), args.host, args.port, args.data_dir)
    return 0


def printable(what: str, settings: Settings, account_id: str, preprovisioned: bool) -> object:
    """The document `semichat provision --print WHAT` prints; the policy is that of
    `settings.routing` (`--preprovisioned` is the older spelling of `--routing
    preprovisioned`)."""
    if what == "tables":
        from semichat.aws.tables import tables_document

        return tables_document(settings.table_prefix)
    if what == "policy":
        from semichat.aws.iam import server_policy

        return server_policy(
            region=settings.region,
            account=account_id,
            table_prefix=settings.table_prefix,
            queue_prefix=settings.queue_prefix,
            routing="preprovisioned" if preprovisioned else settings.routing,
        )
    return synthesized_template()


def synthesized_template() -> object:
    """The CDK app's template (`infra/cloudformation.json`); needs the `infra` extra."""
    import tempfile

    try:
        from semichat.aws.stack import synthesize
    except ImportError as exc:
        raise UserError(
            f"the CloudFormation template comes from the CDK app, which needs the infra extra "
            f"({exc.name} is missing): pip install -e '.[infra]', or read infra/cloudformation.json"
        ) from None
    with tempfile.TemporaryDirectory(prefix="semichat-cdk-") as outdir:
        return synthesize(outdir).template


def dump_json(document: object) -> str:
    """The one JSON layout for printed and committed documents (stable, diff-friendly)."""
    return json.dumps(document, indent=2) + "\n"


def provision_command(args: argparse.Namespace) -> int:
    from semichat.server.api.logs import configure_logging
    from semichat.server.provisioning import parse_users, provision_report

    settings = backend_settings(args)
    if args.print_what:
        document = printable(args.print_what, settings, args.account_id, args.preprovisioned)
        sys.stdout.write(dump_json(document))
        return 0
    users = parse_users(args.users, args.users_file)
    if settings.backend == "embedded" and not (settings.dynamodb_url and settings.sqs_url):
        raise UserError(
            "the embedded backend lives only as long as `semichat serve`; give "
            "--endpoint-url (e.g. of `semichat backend`) or choose --backend localstack|aws"
        )
    configure_logging("WARNING")
    sys.stdout.write(dump_json(asyncio.run(provision_report(settings, users))))
    return 0


def token_command(args: argparse.Namespace) -> int:
    from semichat.server.identity import validate_user_id
    from semichat.server.trust import DEFAULT_TTL_S, issue_token

    settings = Settings.from_env().with_overrides(
        auth_secret_file=args.auth_secret_file,
        auth_issuer=args.auth_issuer,
        auth_audience=args.auth_audience,
    )
    user = validate_user_id(args.user)
    ttl = DEFAULT_TTL_S if args.ttl is None else args.ttl
    sys.stdout.write(issue_token(settings, user, ttl) + "\n")
    return 0
