"""`semichat calibrate`: measure each AWS call the chat makes against a backend and write the
latency profile that `--faults latency=FILE` replays (see docs/fidelity.md, Latency)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semichat.cli.flags import UserError
from semichat.cli.help import add_command
from semichat.settings import BACKENDS, Settings

if TYPE_CHECKING:
    from semichat.aws.latency import LatencyProfile


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "calibrate")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="embedded",
        help="what to measure (default embedded, started here for the measurement)",
    )
    p.add_argument("--endpoint-url", help="one endpoint URL for both DynamoDB and SQS")
    p.add_argument("--dynamodb-endpoint", help="DynamoDB endpoint URL (overrides --endpoint-url)")
    p.add_argument("--sqs-endpoint", help="SQS endpoint URL (overrides --endpoint-url)")
    p.add_argument("--region", help="AWS region (default us-east-1)")
    p.add_argument("--output", required=True, type=Path, help="the profile file to write (JSON)")
    p.add_argument(
        "--count", type=int, default=200, help="calls of each operation at most (default 200)"
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="seconds of measuring in all, shared by the operations (default 60)",
    )
    p.add_argument(
        "--replay",
        metavar="PROFILE",
        help="measure through this latency profile's replay (aws or a file): a check that the "
        "replay gives its figures back on this backend",
    )
    p.set_defaults(func=calibrate_command)


def calibrate_command(args: argparse.Namespace) -> int:
    from semichat.aws.latency import LatencyProfileError, load_profile, parse_profile
    from semichat.cli.server import dump_json

    if args.count < 2 or args.max_seconds <= 0:
        raise UserError("--count must be at least 2 and --max-seconds above 0")
    settings = Settings.from_env().with_overrides(
        backend=args.backend,
        endpoint_url=args.endpoint_url,
        dynamodb_endpoint=args.dynamodb_endpoint,
        sqs_endpoint=args.sqs_endpoint,
        region=args.region,
    )
    try:
        replay = load_profile(args.replay) if args.replay else None
    except LatencyProfileError as exc:
        raise UserError(f"--replay: {exc}") from None
    document = asyncio.run(_measure(settings, args.count, args.max_seconds, replay))
    parse_profile(document, str(args.output))  # what is written must replay
    args.output.write_text(dump_json(document))
    print(_table(document))
    print(f"wrote {args.output}; replay it with --faults latency={args.output}")
    return 0


async def _measure(
    settings: Settings, count: int, max_seconds: float, replay: LatencyProfile | None
) -> dict[str, Any]:
    from semichat.aws.calibration import calibrate
    from semichat.backends import with_backend

    async with with_backend(settings) as resolved:
        return await calibrate(resolved, count, max_seconds, replay)


def _table(document: dict[str, Any]) -> str:
    rows = [f"{'operation':32} {'p50':>8} {'p90':>8} {'p99':>8} {'p99.9':>8}  (ms)"]
    for key, value in document["operations"].items():
        p = value["percentiles_ms"]
        rows.append(f"{key:32} " + " ".join(f"{p[q]:8.2f}" for q in ("50", "90", "99", "99.9")))
    return "\n".join(rows)
