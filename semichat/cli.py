"""The `semichat` command line: one small function per subcommand, dispatched by argparse.

Heavy imports (the server, Locust's harness, the AWS tools) happen inside each subcommand, so
`semichat --help` and a mistyped flag answer at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from semichat.settings import AUTH_MODES, BACKENDS, LOCALSTACK_DYNAMODB, ROUTINGS, Settings

log = logging.getLogger("semichat.cli")

PRINTABLE = ("tables", "policy", "cloudformation")


class UserError(Exception):
    """A mistake a user can fix: printed as one line, never as a traceback."""


def _add_backend_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="where DynamoDB and SQS come from (default: embedded, a moto server started here)",
    )
    p.add_argument("--endpoint-url", help="one endpoint URL for both DynamoDB and SQS")
    p.add_argument("--dynamodb-endpoint", help="DynamoDB endpoint URL (overrides --endpoint-url)")
    p.add_argument("--sqs-endpoint", help="SQS endpoint URL (overrides --endpoint-url)")
    p.add_argument(
        "--localstack-endpoint",
        help="with --backend localstack: its URL (default http://127.0.0.1:4566)",
    )
    p.add_argument(
        "--localstack-dynamodb",
        choices=LOCALSTACK_DYNAMODB,
        help="with --backend localstack and no --dynamodb-endpoint: DynamoDB from LocalStack or "
        "the embedded backend; auto (default) asks LocalStack's health check",
    )
    p.add_argument("--region", help="AWS region (default us-east-1)")
    p.add_argument("--table-prefix", help="prefix of the DynamoDB table names (default semichat-)")
    p.add_argument("--queue-prefix", help="prefix of the SQS queue names (default semichat-)")
    _add_routing_flags(p)


def _add_routing_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--routing",
        choices=ROUTINGS,
        default=None,
        help="notification routing strategy (default per_user_queue; see the README's "
        "table of strategies)",
    )
    p.add_argument(
        "--shards", type=int, default=None, help="with --routing sharded: shared queues (4)"
    )


def _add_token_flags(p: argparse.ArgumentParser) -> None:
    """How tokens are signed and checked: shared by `serve` and `token`."""
    p.add_argument(
        "--auth-secret-file",
        help="file holding the HS256 secret, at least 32 bytes (or set SEMICHAT_AUTH_SECRET)",
    )
    p.add_argument("--auth-issuer", help="the `iss` tokens must carry (and `token` puts in)")
    p.add_argument("--auth-audience", help="the `aud` tokens must carry (and `token` puts in)")


def _add_auth_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--auth",
        choices=AUTH_MODES,
        default=None,
        help="demo (default): trust x-user-id or the uid cookie, loopback only; token: a signed "
        "JWT as Authorization: Bearer or the session cookie",
    )
    _add_token_flags(p)
    p.add_argument(
        "--auth-jwks-url",
        help="with --auth token: verify RS256/ES256 tokens against this JWKS URL (e.g. Cognito's)",
    )
    p.add_argument(
        "--allowed-origins",
        help="comma-separated origins allowed to make cookie-authenticated writes "
        "(default: this server's own)",
    )
    p.add_argument(
        "--insecure-demo-auth-on-public-address",
        action="store_true",
        default=None,
        help="let --auth demo listen on a non-loopback address, where anyone can claim to be "
        "anyone",
    )


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="serve the chat API, the stream and the widget")
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
        help="bind with SO_REUSEPORT, beside a socket that holds the port for this server "
        "(a test harness's reservation: the port cannot be taken between choice and bind)",
    )
    _add_backend_flags(p)
    _add_auth_flags(p)
    _add_faults_flag(p)
    p.add_argument(
        "--processes",
        type=int,
        default=None,
        help="server processes sharing the port with SO_REUSEPORT, over one backend (default 1)",
    )
    # Set by `serve --processes N` on its children: bind with SO_REUSEPORT, print when serving,
    # stop when that process is gone.
    p.add_argument("--supervisor-pid", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    p.set_defaults(func=serve_command)


def _add_faults_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--faults",
        metavar="SPEC",
        help="inject faults: presets sqs, platform, all, and/or kind=value parts, e.g. "
        "duplicate=0.05,reorder=0.05,seed=7 (see README, Faults)",
    )


def _add_backend(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "backend", help="run the embedded backend (moto server) alone and print its endpoint"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    p.set_defaults(func=backend_command)


def _add_provision(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "provision",
        help="create the tables (and users' queues), or print tables, IAM policy, CloudFormation",
    )
    _add_backend_flags(p)
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
    p = sub.add_parser("token", help="print a signed token for USER (for `serve --auth token`)")
    p.add_argument("user", help="the user id the token carries")
    p.add_argument(
        "--ttl",
        type=float,
        default=None,
        help="seconds until it expires (default 3600; negative: already expired, for tests)",
    )
    _add_token_flags(p)
    p.set_defaults(func=token_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semichat", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_serve, _add_backend, _add_provision, _add_token):
        add(sub)
    from semichat.harness.cli import add_parsers  # it imports the shared flags from here

    add_parsers(sub)
    return parser


def backend_settings(args: argparse.Namespace) -> Settings:
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
        shards=args.shards,
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    settings = backend_settings(args).with_overrides(
        host=args.host,
        port=args.port,
        auth=args.auth,
        auth_secret_file=args.auth_secret_file,
        auth_jwks_url=args.auth_jwks_url,
        auth_issuer=args.auth_issuer,
        auth_audience=args.auth_audience,
        allowed_origins=args.allowed_origins,
        insecure_demo_auth_on_public_address=args.insecure_demo_auth_on_public_address,
        faults=getattr(args, "faults", None),
        processes=getattr(args, "processes", None),
    )
    if settings.backend != "aws":
        # Emulators start empty: create the tables. Real AWS is provisioned ahead of time.
        settings = settings.with_overrides(create_tables=True)
    return settings


def check_demo_auth_address(settings: Settings) -> None:
    """Refuse demo identity on an address others can reach, unless asked for by name."""
    from semichat.server.serve import is_loopback

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


def serve_command(args: argparse.Namespace) -> int:
    from semichat.server.logs import configure_logging
    from semichat.server.nemesis import FaultSpec
    from semichat.server.serve import serve

    settings = settings_from_args(args)
    check_demo_auth_address(settings)
    FaultSpec.parse(settings.faults)  # a bad spec is refused before anything starts
    if settings.processes < 1:
        raise UserError("--processes must be at least 1")
    configure_logging(args.log_level)
    try:
        if args.supervisor_pid:
            asyncio.run(serve(settings, True, args.supervisor_pid, _say_serving))
        elif settings.processes > 1:
            from semichat.server.supervisor import supervise

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
    from semichat.aws.embedded import run_backend

    run_backend(Settings.from_env(), args.host, args.port)
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
    from semichat.aws.provisioning import parse_users, provision_report
    from semichat.server.logs import configure_logging

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
    from semichat.server.tokens import DEFAULT_TTL_S, issue_token

    settings = Settings.from_env().with_overrides(
        auth_secret_file=args.auth_secret_file,
        auth_issuer=args.auth_issuer,
        auth_audience=args.auth_audience,
    )
    user = validate_user_id(args.user)
    ttl = DEFAULT_TTL_S if args.ttl is None else args.ttl
    sys.stdout.write(issue_token(settings, user, ttl) + "\n")
    return 0


def _user_errors() -> tuple[type[BaseException], ...]:
    """What a user makes or meets at start: shown as one line, not a traceback."""
    from semichat.aws.localstack import LocalstackUnavailable
    from semichat.server.errors import ApiError

    return (UserError, ValueError, OSError, ApiError, LocalstackUnavailable)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # As Ctrl-C does: unwind, so that `finally` blocks stop the processes a command started
    # (simulate's server, backend and Locust). `serve` and `backend` install their own handler.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        code = args.func(args)
    except _user_errors() as exc:
        sys.exit(f"semichat {args.command}: {exc}")
    if code:
        sys.exit(code)
