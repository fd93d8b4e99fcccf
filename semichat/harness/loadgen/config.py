"""A simulated run's knobs, passed to Locust processes through the environment."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from semichat.settings import env_values

ENV_PREFIX = "SEMICHAT_SIM_"


@dataclass(frozen=True)
class LoadConfig:
    run_dir: str = "runs/adhoc"
    # Distinguishes this run's users from earlier runs' on a long-lived server.
    run_tag: str = "sim"
    conversation_size: int = 3
    # Mean seconds between two sends of one user.
    send_interval: float = 2.0
    # Unix time after which users stop sending and only listen (the drain).
    send_until: float = 0.0
    # Streams (tabs) each user holds at once.
    tabs: int = 1
    # How many users of each Locust process chat (the first ones); the rest only hold their
    # streams. -1: everyone (scenario `idle` sets it, and `--active K` overrides).
    active: int = -1
    # Cut each stream after a random time in this range (seconds); 0 never cuts.
    cut_min: float = 0.0
    cut_max: float = 0.0
    # Scenario `gap`: messages sent while each conversation's reader tab is offline.
    gap_messages: int = 300
    # Longest reconnect backoff after a failed stream (widget.js STREAM_BACKOFF.capMs).
    backoff_max: float = 10.0
    # For load shapes: the peak user count, the run length and how many steps reach the peak.
    users: int = 10
    duration: float = 30.0
    ramp_steps: int = 5

    def to_env(self) -> dict[str, str]:
        return {ENV_PREFIX + k.upper(): str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> LoadConfig:
        return cls(**env_values(cls, ENV_PREFIX, environ))


def load_option(config: LoadConfig, send_seconds: float | None) -> str:
    """`--semichat-load` of a Locust master, which Locust passes on to its workers: the config,
    with the sending window relative (`send_seconds`; None: no end) as a worker's clock may
    differ."""
    return json.dumps({"load": asdict(config), "send_seconds": send_seconds})


def config_from_option(value: str, now: float) -> LoadConfig:
    """A worker's config from `--semichat-load`, sending until `send_seconds` after `now`."""
    data = json.loads(value)
    seconds = data["send_seconds"]
    send_until = 0.0 if seconds is None else now + float(seconds)
    return replace(LoadConfig(**data["load"]), send_until=send_until)


def knob_flag(knob: str) -> str:
    """The Locust argument of a `LoadConfig` field a scenario sets: `tabs` -> `--tabs`."""
    return "--" + knob.replace("_", "-")
