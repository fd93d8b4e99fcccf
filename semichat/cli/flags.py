"""The flags several subcommands share (backend, routing, auth, tokens, faults) and the
settings they make; both `semichat` and its harness subcommands import them from here."""

from __future__ import annotations

import argparse

from semichat.settings import AUTH_MODES, BACKENDS, LOCALSTACK_DYNAMODB, ROUTINGS, Settings


class UserError(Exception):
    """A mistake a user can fix: printed as one line, never as a traceback."""


def add_backend_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="where DynamoDB and SQS come from (default: embedded, both emulated on this "
        "machine, nothing to install)",
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
    add_routing_flags(p)


def add_routing_flags(p: argparse.ArgumentParser) -> None:
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


def add_token_flags(p: argparse.ArgumentParser) -> None:
    """How tokens are signed and checked: shared by `serve` and `token`."""
    p.add_argument(
        "--auth-secret-file",
        help="file holding the HS256 secret, at least 32 bytes (or set SEMICHAT_AUTH_SECRET)",
    )
    p.add_argument("--auth-issuer", help="the `iss` tokens must carry (and `token` puts in)")
    p.add_argument("--auth-audience", help="the `aud` tokens must carry (and `token` puts in)")


def add_auth_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--auth",
        choices=AUTH_MODES,
        default=None,
        help="demo (default): trust x-user-id or the uid cookie, loopback only; token: a signed "
        "JWT as Authorization: Bearer or the session cookie",
    )
    add_token_flags(p)
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


def add_faults_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--faults",
        metavar="SPEC",
        help="inject faults: presets sqs, platform, all, and/or kind=value parts, e.g. "
        "duplicate=0.05,reorder=0.05,seed=7 (see docs/faults.md); latency=aws or latency=FILE "
        "makes every AWS call take a latency profile's time (see docs/fidelity.md)",
    )


def backend_settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the flags of `add_backend_flags`."""
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
