"""The `semichat` command line.

What `--help` says is in `help.py`; the shared flags are in `flags.py`, the server's commands in
`server.py`, the harness's (simulate, check, sweep, worker) in `harness.py`, `calibrate` in
`calibrate.py`.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from semichat.cli import calibrate, harness, model, server
from semichat.cli.flags import UserError, settings_from_args
from semichat.cli.help import EXAMPLES, SUMMARY, WIDTH
from semichat.cli.server import check_demo_auth_address, dump_json, printable
from semichat.processes import unwind_on_sigterm

__all__ = [
    "UserError",
    "build_parser",
    "check_demo_auth_address",
    "dump_json",
    "main",
    "printable",
    "settings_from_args",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semichat",
        description=textwrap.fill(SUMMARY, WIDTH),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    server.add_parsers(sub)
    harness.add_parsers(sub)
    model.add_parsers(sub)
    calibrate.add_parsers(sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """What a user makes or meets at start: shown as one line, not a traceback."""
    from semichat.aws.localstack import LocalstackUnavailable
    from semichat.server.errors import ApiError

    return (UserError, ValueError, OSError, ApiError, LocalstackUnavailable)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    unwind_on_sigterm()  # `serve` and `backend` install their own handler
    try:
        code = args.func(args)
    except _user_errors() as exc:
        sys.exit(f"semichat {args.command}: {exc}")
    if code:
        sys.exit(code)
