"""A scenario's `KNOBS` as Locust custom arguments: `--conversation-size`, `--tabs` and the like.

So plain `locust -f loadtests/multitab.py` runs the scenario as written, `locust --help` lists
its settings, and Locust's web UI shows them in its start form. A knob's default is the
scenario's value, unless a `SEMICHAT_SIM_<KNOB>` variable says otherwise; `semichat simulate`
passes its flags as these arguments.
"""

from __future__ import annotations

import os
from dataclasses import fields, replace
from typing import Any

from locust import events

from semichat.harness.loadgen.config import ENV_PREFIX, LoadConfig, knob_flag

KNOB_HELP = {
    "conversation_size": "users per conversation",
    "send_interval": "mean seconds between two sends of one user",
    "tabs": "tabs per user, each with its own stream and view",
    "active": "how many users of each Locust process chat (the first ones; -1: all)",
    "cut_min": "cut each stream after at least this many seconds (0: never)",
    "cut_max": "cut each stream after at most this many seconds (0: never)",
    "ramp_steps": "equal steps in which the load shape reaches the user count",
    "backoff_max": "longest reconnect backoff, seconds",
    "gap_messages": "scenario gap: messages sent while the reader's tab is offline",
}
_FIELDS = {f.name: f for f in fields(LoadConfig)}


def knob_default(knob: str, value: Any, environ: dict[str, str] | None = None) -> Any:
    """The scenario's value, or its `SEMICHAT_SIM_<KNOB>` variable converted to its type."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_PREFIX + knob.upper())
    return value if raw is None else type(value)(raw)


def knob_arguments(knobs: dict[str, Any]) -> None:
    """Offer `knobs` (a scenario's `KNOBS`) as Locust arguments; call it at a locustfile's top."""
    unknown = sorted(set(knobs) - set(_FIELDS))
    if unknown:
        raise ValueError(f"KNOBS names settings LoadConfig does not have: {unknown}")

    @events.init_command_line_parser.add_listener
    def _add(parser: Any) -> None:
        # On the parser itself: Locust's web UI shows only what its own add_argument marks.
        for knob, value in knobs.items():
            parser.add_argument(
                knob_flag(knob),
                type=type(value),
                default=knob_default(knob, value),
                help=f"scenario setting: {KNOB_HELP.get(knob, knob)} (default {value})",
                dest=knob,
            )


def with_knobs(config: LoadConfig, options: Any) -> LoadConfig:
    """`config` with every knob `options` (Locust's parsed options) carries."""
    if options is None:
        return config
    given = {k: getattr(options, k) for k in _FIELDS if k in KNOB_HELP and hasattr(options, k)}
    return replace(config, **{k: type(getattr(config, k))(v) for k, v in given.items()})
