"""Latency per operation, as distributions, replayed beneath the AWS client's retries.

A profile says how long each AWS call takes, in total, as percentiles per operation:

    {"format": "semichat-latency-profile/1", "source": "...",
     "measured": {"backend": ..., "endpoint": ..., "at": ISO time, "count": N},   (optional)
     "operations": {"sqs:SendMessage": {"percentiles_ms": {"50": 18, "90": 24, "99": 45}},
                    "sqs:ReceiveMessage.wake": {...}, "dynamodb:PutItem": {...}, ...}}

Keys are `service:Operation` (botocore's service and operation names). `sqs:ReceiveMessage.wake`
is a long poll's wake-up: the time from a message's arrival to the waiting poll's answer. A
percentile map needs "50"; values must not decrease as the percentile grows. A sample is drawn by
inverse CDF, linear between the given percentiles, from p0 (the "0" value if given, else the
lowest value) to the highest percentile's value, which also stands for everything above it.

Replay (`install_latency`) hooks two botocore events that aiobotocore awaits on every attempt,
inside the retry loop: `request-created` stamps the attempt's start, draws its total and holds
the request for half of it (the way out), `response-received` (sent for answers and errors
alike, injected ones included) sleeps what the total has left after the real call: a fast
loopback backend then takes about the profile's time, the request meets the backend halfway
through as it meets AWS, and a backend replaying its own calibration changes by about nothing.
A long poll (WaitTimeSeconds > 0) that returns messages gets the `.wake` sample on top of its
real time instead, with no hold on the way out (a poll cannot tell
when its message arrived, so the wait cannot be topped up), or what a plain ReceiveMessage's
sample has left, if more (the messages were waiting already); an empty poll keeps its real wait.
Operations the profile does not name run at their real speed.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from itertools import pairwise
from pathlib import Path
from typing import Any

FORMAT = "semichat-latency-profile/1"
SERVICES = ("dynamodb", "sqs")
WAKE = "sqs:ReceiveMessage.wake"
BUILT_IN = ("aws",)
# The percentiles `calibrate` writes (and the built-in profile gives).
REPORTED = ("50", "90", "99", "99.9")

# A remainder shorter than this is not slept: a sleep resumes at the event loop's next turn at
# the earliest, which on a busy server lasts about as long, so tiny top-ups would add a turn to
# calls that took their time already (before this, replaying the embedded backend's own profile,
# whose calls mostly take 1 to 2 ms, raised the chat's wire p50 by 4 to 42 ms in 4 paired runs).
MIN_SLEEP_S = 0.001

# Keys in a call's botocore context (a dict shared by its attempts).
_STARTED = "semichat_latency_started"
_LONG_POLL = "semichat_latency_long_poll"
_TOTAL = "semichat_latency_total"


class LatencyProfileError(ValueError):
    """A profile that cannot be used; the message (one line) names the fault."""


@dataclass(frozen=True)
class Distribution:
    """(percentile 0..100, milliseconds) points from p0 up, both non-decreasing."""

    points: tuple[tuple[float, float], ...]

    @classmethod
    def from_percentiles(cls, percentiles: Mapping[str, float]) -> Distribution:
        pairs = sorted((float(q), float(ms)) for q, ms in percentiles.items())
        if pairs[0][0] > 0:
            pairs.insert(0, (0.0, pairs[0][1]))
        return cls(tuple(pairs))

    def quantile(self, q: float) -> float:
        """Milliseconds at percentile q (0..100): linear between points, flat above the last.
        Never below 0: interpolating down to a 0 ms point can round to -3e-15 (a capacity
        model's overheads, one difference per percentile, need not rise), and SimPy refuses
        a negative delay."""
        for (q0, v0), (q1, v1) in pairwise(self.points):
            if q <= q1:
                return max(0.0, v0 + (v1 - v0) * (q - q0) / (q1 - q0) if q1 > q0 else v1)
        return self.points[-1][1]

    def sample(self, rng: random.Random) -> float:
        return self.quantile(rng.random() * 100.0)

    def draw(self, rng: random.Random, u: float | None = None) -> float:
        """Milliseconds at quantile `u` (0..1; given: the capacity model's calls that are slow
        together), else at a random one."""
        return self.quantile((rng.random() if u is None else u) * 100.0)

    @property
    def floor(self) -> float:
        return self.points[0][1]

    def mean(self) -> float:
        """The distribution's mean (area under the piecewise-linear inverse CDF), in ms."""
        area = sum((q1 - q0) * (v0 + v1) / 2 for (q0, v0), (q1, v1) in pairwise(self.points))
        return (area + (100.0 - self.points[-1][0]) * self.points[-1][1]) / 100.0


@dataclass(frozen=True)
class LatencyProfile:
    source: str
    operations: Mapping[str, Distribution]
    document: Mapping[str, Any] = field(repr=False, compare=False)

    def distribution(self, service: str, operation: str) -> Distribution | None:
        return self.operations.get(f"{service}:{operation}")


def load_profile(spec: str) -> LatencyProfile:
    """The built-in profile named `spec` (`aws`), or the profile file at path `spec`."""
    if spec in BUILT_IN:
        text = files("semichat.aws").joinpath("profiles", f"{spec}.json").read_text("utf-8")
        return parse_profile(_json(text, spec), spec)
    path = Path(spec)
    if not path.is_file():
        raise LatencyProfileError(f"latency profile {spec}: no such file")
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LatencyProfileError(f"latency profile {spec}: unreadable ({exc})") from None
    return parse_profile(_json(text, spec), spec)


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LatencyProfileError(
            f"latency profile {where}: not JSON ({exc.msg}, line {exc.lineno})"
        ) from None


def parse_profile(document: Any, where: str, also: tuple[str, ...] = ()) -> LatencyProfile:
    """The profile `document` says, or LatencyProfileError naming its first fault. Keys that
    start with one of `also` pass as operations too (the capacity model's `http:` entries)."""
    if not isinstance(document, dict):
        raise LatencyProfileError(f"latency profile {where}: not a JSON object")
    if document.get("format") != FORMAT:
        raise LatencyProfileError(
            f"latency profile {where}: format {document.get('format')!r}, expected {FORMAT!r}"
        )
    operations = document.get("operations")
    if not isinstance(operations, dict) or not operations:
        raise LatencyProfileError(f'latency profile {where}: no "operations" object')
    parsed = {key: _operation(where, key, value, also) for key, value in operations.items()}
    return LatencyProfile(str(document.get("source", where)), parsed, document)


def _operation(where: str, key: str, value: Any, also: tuple[str, ...] = ()) -> Distribution:
    if key not in known_operations() and not key.startswith(also or ("\0",)):
        raise LatencyProfileError(
            f"latency profile {where}: unknown operation {key!r} (keys are service:Operation "
            f"of {' or '.join(SERVICES)}, e.g. sqs:SendMessage, or {WAKE})"
        )
    percentiles = value.get("percentiles_ms") if isinstance(value, dict) else None
    if not isinstance(percentiles, dict) or "50" not in percentiles:
        raise LatencyProfileError(
            f'latency profile {where}: {key} needs "percentiles_ms" with "50" at least'
        )
    checked: dict[str, float] = {}
    for q, ms in percentiles.items():
        p = _number(q)
        if p is None or not 0 <= p <= 100:
            raise LatencyProfileError(
                f"latency profile {where}: {key}: percentile {q!r} not 0..100"
            )
        v = ms if isinstance(ms, int | float) and not isinstance(ms, bool) else None
        if v is None or not math.isfinite(v):
            raise LatencyProfileError(
                f"latency profile {where}: {key} p{q}: {ms!r} is not a number"
            )
        if v < 0:
            raise LatencyProfileError(
                f"latency profile {where}: {key} p{q}: negative latency {v} ms"
            )
        checked[q] = float(v)
    by_percentile = sorted((float(q), v) for q, v in checked.items())
    for (q0, v0), (q1, v1) in pairwise(by_percentile):
        if v1 < v0:
            raise LatencyProfileError(
                f"latency profile {where}: {key}: p{q1:g} ({v1} ms) is below p{q0:g} ({v0} ms)"
            )
    return Distribution.from_percentiles(checked)


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@cache
def known_operations() -> frozenset[str]:
    """Every `service:Operation` botocore models for the two services, and the long-poll wake."""
    import botocore.session

    session = botocore.session.get_session()
    names = {
        f"{service}:{name}"
        for service in SERVICES
        for name in session.get_service_model(service).operation_names
    }
    return frozenset({*names, WAKE})


def percentiles_of(samples_ms: Sequence[float]) -> dict[str, float]:
    """The floor ("0") and REPORTED percentiles of `samples_ms` (nearest rank), rounded to 0.01."""
    ordered = sorted(samples_ms)
    out = {"0": round(ordered[0], 2)}
    for q in REPORTED:
        rank = max(1, math.ceil(float(q) / 100 * len(ordered)))
        out[q] = round(ordered[rank - 1], 2)
    return out


def profile_document(
    source: str, samples_ms: Mapping[str, Sequence[float]], measured: Mapping[str, Any]
) -> dict[str, Any]:
    """A profile document from samples per operation key (those with none are left out)."""
    return {
        "format": FORMAT,
        "source": source,
        "measured": dict(measured),
        "operations": {
            key: {"percentiles_ms": percentiles_of(values)}
            for key, values in sorted(samples_ms.items())
            if values
        },
    }


class _Replay:
    """The handlers one client's events call; `service` is its botocore service name."""

    def __init__(
        self,
        service: str,
        profile: LatencyProfile,
        rng: random.Random,
        on_delay: Callable[[str], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.profile = profile
        self.rng = rng
        self.on_delay = on_delay
        self.sleep = sleep
        self.clock = clock
        self.wake = profile.operations.get(WAKE) if service == "sqs" else None

    def note_long_poll(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_LONG_POLL] = (params.get("WaitTimeSeconds") or 0) > 0

    async def start(self, request: Any, operation_name: str, **_: Any) -> None:
        """Stamp the attempt's start, draw its total, and hold the request for half of it:
        the request reaches the backend halfway through, as it reaches AWS (a symmetric
        network), so a message a send enqueues can wake a poll before the send's answer."""
        context = request.context
        context[_STARTED] = self.clock()
        dist = self.profile.distribution(self.service, operation_name)
        if dist is None or (context.get(_LONG_POLL) and operation_name == "ReceiveMessage"):
            return
        total = context[_TOTAL] = dist.sample(self.rng) / 1000
        if total / 2 >= MIN_SLEEP_S:
            self._delayed(f"{self.service}:{operation_name}")
            await self.sleep(total / 2)

    async def finish(
        self, context: dict[str, Any], parsed_response: Any, event_name: str, **_: Any
    ) -> None:
        started = context.pop(_STARTED, None)
        total: float = context.pop(_TOTAL, 0.0)
        if started is None:
            return
        operation = event_name.rsplit(".", 1)[-1]
        elapsed = self.clock() - started
        if context.get(_LONG_POLL) and operation == "ReceiveMessage":
            if (parsed_response or {}).get("Messages"):
                await self._wake(elapsed)
            return
        left = total - elapsed
        if left >= MIN_SLEEP_S:
            if total / 2 < MIN_SLEEP_S:  # counted once per attempt
                self._delayed(f"{self.service}:{operation}")
            await self.sleep(left)

    async def _wake(self, elapsed: float) -> None:
        """A long poll that returns messages answers no sooner than a wake-up after they came
        (added: when they came is unknown), nor sooner than a plain ReceiveMessage would (when
        they were waiting already)."""
        receive = self.profile.distribution("sqs", "ReceiveMessage")
        wake = self.wake.sample(self.rng) / 1000 if self.wake is not None else 0.0
        left = max(wake, receive.sample(self.rng) / 1000 - elapsed if receive else 0.0)
        if left >= MIN_SLEEP_S:
            self._delayed(WAKE if self.wake is not None else "sqs:ReceiveMessage")
            await self.sleep(left)

    def _delayed(self, key: str) -> None:
        if self.on_delay is not None:
            self.on_delay(key)


def install_latency(
    client: Any,
    service: str,
    profile: LatencyProfile,
    rng: random.Random | None = None,
    on_delay: Callable[[str], None] | None = None,
) -> None:
    """Make every attempt of `client`'s calls take the profile's time (module docstring);
    `on_delay` hears the operation key of each attempt that was slowed down."""
    replay = _Replay(service, profile, rng or random.Random(), on_delay)
    events = client.meta.events
    if service == "sqs":
        events.register(f"before-parameter-build.{service}.ReceiveMessage", replay.note_long_poll)
    # First, so that signing the request counts in the attempt's time, as it does in a call's.
    events.register_first(f"request-created.{service}", replay.start)
    events.register(f"response-received.{service}", replay.finish)
