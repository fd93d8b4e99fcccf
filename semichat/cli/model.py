"""`semichat model`: the capacity model of one configuration, or of a measured run beside it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from semichat.cli.help import add_command

if TYPE_CHECKING:
    from semichat.model.profile import LatencyProfile


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "model")
    p.add_argument("--routing", default="per_user_queue", help="the strategy modelled")
    p.add_argument("--users", type=int, default=1000, help="users connected at once")
    p.add_argument("--conversation-size", type=int, default=3, help="participants (default 3)")
    p.add_argument(
        "--send-interval", type=float, default=2.0, help="seconds between a user's sends"
    )
    p.add_argument("--tabs", type=int, default=1, help="tabs (streams) per user")
    p.add_argument(
        "--connected-hours", type=float, default=8.0, help="hours a day each user is connected"
    )
    p.add_argument("--reconnects-per-hour", type=float, default=0.0, help="per connected user")
    p.add_argument("--shards", type=int, default=4, help="shared queues of `sharded`")
    p.add_argument(
        "--profile",
        help="a latency profile (semichat-latency-profile/1), or a run directory whose server "
        "timed each operation; default: the embedded backend's, measured, or with --validate "
        "the run's own",
    )
    p.add_argument(
        "--validate",
        metavar="RUN_DIR",
        help="model a measured run's configuration and print model | measured | ratio",
    )
    p.add_argument("--replications", type=int, default=5, help="seeds averaged by --validate")
    p.add_argument(
        "--cpu-share",
        type=float,
        default=None,
        help="with --validate: the share of a core the server got while it had work (default: "
        "measured by the run, else a whole core)",
    )
    p.add_argument(
        "--emulators",
        action="store_true",
        help="with --validate: queue at the run's emulators for their measured CPU per request "
        "(off by default: it agreed worse with the quiet runs, docs/capacity.md)",
    )
    p.set_defaults(func=model_command)


def _profile(given: str) -> LatencyProfile:
    """A profile file, or the per-operation latency a run's server counted."""
    from semichat.model.profile import load_profile, profile_from_results
    from semichat.model.validation import read_results

    if Path(given).is_dir():
        path, results = read_results(given)
        return profile_from_results(results, str(path))
    return load_profile(given)


def model_command(args: argparse.Namespace) -> int:
    from semichat.model.inputs import Activity, ModelInputError, Setup
    from semichat.model.profile import DEFAULT_PROFILE, load_profile
    from semichat.model.report import format_estimate
    from semichat.model.scale import estimate
    from semichat.model.validation import format_rows, validate

    profile = _profile(args.profile) if args.profile else None
    if args.validate:
        if args.replications < 1:
            raise ModelInputError(f"replications must be at least 1, not {args.replications}")
        rows = validate(
            args.validate,
            profile,
            args.replications,
            cpu_share=args.cpu_share,
            emulators=args.emulators,
        )
        print(format_rows(rows))
        return 0
    activity = Activity(
        users=args.users,
        conversation_size=args.conversation_size,
        send_interval_s=args.send_interval,
        tabs=args.tabs,
        connected_hours_per_day=args.connected_hours,
        reconnects_per_hour=args.reconnects_per_hour,
    )
    setup = Setup(routing=args.routing, shards=args.shards)
    activity.check()
    setup.check()
    print(format_estimate(estimate(activity, setup, profile or load_profile(DEFAULT_PROFILE))))
    return 0
