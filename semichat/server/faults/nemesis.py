"""The nemesis: faults injected on purpose, as Jepsen's nemesis does, so that a run shows what the
user view survives when the wire suffers what real SQS and real platforms do.

Emulators never duplicate, reorder, throttle or drop on their own (see the shared notes), so a
run without faults says nothing about them. A spec such as
`duplicate=0.05,reorder=0.05,delete_fail=0.02,receive_error=0.02,seed=7` names each fault and
its rate; presets (`sqs`, `platform`, `all`) expand to several, and later parts override earlier
ones (`sqs,duplicate=0.2`). This module is pure: parsing, the seeded decisions, and the counts
of what was injected. AWS's errors and limits are applied beneath botocore
(`semichat/aws/wire/`), `duplicate`, `reorder` and `queue_delete` by `faulty_sqs.py` (below
every routing strategy), the platform faults by `stream.py`, and `crash` by `semichat simulate`.

Kinds (P is a probability per operation, S seconds, N a count):

- `duplicate=P`: a DeleteMessage reports success but the message comes back 1 to 3 s later, as
  when a delete misses one of SQS's replicas (standard queues deliver at least once).
- `reorder=P`: a SendMessage is delayed 2 to 5 s (`DelaySeconds`), so later ones overtake it
  (standard queues order on a best-effort basis).
- `delete_fail=P`: DeleteMessage fails (5xx or throttling); the message is still in flight.
- `receive_error=P`, `send_error=P`: the call fails with a 5xx or throttling error; half of the
  failed sends did reach the queue (an error after the fact, as a timeout is).
- `create_throttle=P`: CreateQueue is throttled (`RequestThrottled`).
- `queue_quota=N`: CreateQueue of a queue beyond the N this process created is refused with
  `OverLimit` (an account quota or an organisation's guardrail).
- `queue_delete=R`: about R idle queues a minute disappear behind the app (SQS deletes queues
  idle for long), which the app heals by re-creating them.
- `stream_cut=S`: streams are cut after S seconds, with +-50 % jitter (a platform's or load
  balancer's response limit), without a clean end.
- `lost_write=P`: a notification is acknowledged as written, but the connection dies before the
  client reads it (the write is dropped, then the connection cut).
- `stall=P`: a stream, with probability P, stops forwarding bytes 1 to 5 s after it opened but
  stays open (a proxy or NAT that stalls): heartbeats and notifications are dropped as if
  written (and acknowledged) until the client's watchdog gives up on it and reconnects.
- `crash=S`: `semichat simulate` kills the server (SIGKILL) about S s into the run and starts it
  again over the same backend.
- `latency=aws` or `latency=FILE`: every AWS call takes the time a latency profile gives per
  operation (the built-in `aws` profile, or a file `semichat calibrate` wrote), beneath the
  client's retries (`semichat/aws/latency.py`). A bad file is refused with the spec.
- `seed=N`: the random seed, so that a run's decisions can be repeated.

Beneath botocore's retries (`semichat/aws/wire/`, which documents each): `dynamodb_throttle=P`,
`dynamodb_conflict=P`, `dynamodb_capacity=N` (units a second per table), `stale_read=S`, and
AWS's documented SQS limits `queue_deleted_recently=S`, `inflight_limit=N`, `fifo_tps=N`,
`message_size=B`. `receive_error`, `send_error`, `delete_fail`, `create_throttle` and
`queue_quota` act there too: an injected error meets botocore's retries before the app. The
`aws` preset holds them all (docs/faults.md: which figures are AWS's and which assumed).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, fields, replace
from typing import Any

from botocore.exceptions import ClientError

from semichat.aws.latency import LatencyProfileError, load_profile

PROBABILITIES = (
    "duplicate",
    "reorder",
    "delete_fail",
    "receive_error",
    "send_error",
    "create_throttle",
    "lost_write",
    "stall",
    "dynamodb_throttle",
    "dynamodb_conflict",
)
# Kinds that are not probabilities, with the type of their value.
OTHERS: dict[str, type] = {
    "queue_quota": int,
    "queue_delete": float,
    "stream_cut": float,
    "crash": float,
    "seed": int,
    "dynamodb_capacity": float,
    "stale_read": float,
    "queue_deleted_recently": float,
    "inflight_limit": int,
    "fifo_tps": float,
    "message_size": int,
}
# Kinds whose value is a name or a path, checked by loading what it names.
TEXTS = ("latency",)
PRESETS: dict[str, str] = {
    # What a standard queue does to a busy app: at-least-once, best-effort order, 5xx, throttling.
    "sqs": "duplicate=0.05,reorder=0.05,delete_fail=0.02,receive_error=0.02,send_error=0.02,"
    "create_throttle=0.05",
    # What serverless platforms and load balancers do to long responses.
    "platform": "stream_cut=20,lost_write=0.02",
    # Both, and queues deleted behind the app; no quota (it refuses users by design), no crash
    # (it is `simulate`'s to do and needs a time within the run: add `crash=S`).
    "all": "sqs,platform,queue_delete=2",
    # AWS as documented: its published limits at their published figures, its latency (the
    # built-in profile, each figure sourced in docs/fidelity.md), and errors at rates that are
    # assumptions (AWS publishes none; see docs/faults.md for each figure's source).
    "aws": "queue_deleted_recently=60,inflight_limit=120000,fifo_tps=300,message_size=1048576,"
    "latency=aws,"
    "receive_error=0.001,send_error=0.001,delete_fail=0.001,create_throttle=0.001,"
    "dynamodb_throttle=0.001,dynamodb_conflict=0.0001,duplicate=0.001,reorder=0.001",
}
# The errors AWS answers a failed call with: (code, HTTP status).
FAILURES = (("ServiceUnavailable", 503), ("InternalError", 500), ("ThrottlingException", 400))


class FaultSpecError(ValueError):
    """A `--faults` spec that cannot be understood; the message names the bad part."""


@dataclass(frozen=True)
class FaultSpec:
    duplicate: float = 0.0
    reorder: float = 0.0
    delete_fail: float = 0.0
    receive_error: float = 0.0
    send_error: float = 0.0
    create_throttle: float = 0.0
    lost_write: float = 0.0
    stall: float = 0.0
    queue_quota: int = 0
    queue_delete: float = 0.0
    stream_cut: float = 0.0
    crash: float = 0.0
    seed: int | None = None
    dynamodb_throttle: float = 0.0
    dynamodb_conflict: float = 0.0
    dynamodb_capacity: float = 0.0
    stale_read: float = 0.0
    queue_deleted_recently: float = 0.0
    inflight_limit: int = 0
    fifo_tps: float = 0.0
    message_size: int = 0
    latency: str = ""

    @classmethod
    def parse(cls, text: str | None) -> FaultSpec:
        """`kind=value` parts and preset names, comma-separated; empty or `none`: no faults."""
        return replace(cls(), **_parse_parts(text or "", depth=0))

    @property
    def active(self) -> dict[str, float | int | str]:
        """The faults switched on (the seed aside), by kind."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "seed" and getattr(self, f.name)
        }

    @property
    def server_side(self) -> bool:
        """Whether the server injects anything (`crash` is done to it from outside)."""
        return any(kind != "crash" for kind in self.active)

    def describe(self) -> str:
        """The canonical spec: every active kind, then the seed."""
        # Counts as whole numbers (`:g` would write 1,048,576 as 1.04858e+06), paths as given.
        parts = [
            f"{k}={v}" if isinstance(v, (int, str)) else f"{k}={v:g}"
            for k, v in self.active.items()
        ]
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        return ",".join(parts)


def _parse_parts(text: str, depth: int) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for raw in text.split(","):
        part = raw.strip()
        if not part or (part == "none" and depth == 0):
            continue
        if "=" not in part:
            if part not in PRESETS:
                raise FaultSpecError(
                    f"unknown fault preset {part!r} (presets: {', '.join(PRESETS)}; "
                    f"faults: {', '.join([*PROBABILITIES, *OTHERS, *TEXTS])}, each as kind=value)"
                )
            values.update(_parse_parts(PRESETS[part], depth + 1))
            continue
        kind, _, value = (s.strip() for s in part.partition("="))
        values[kind] = _value(part, kind, value)
    return values


def _value(part: str, kind: str, value: str) -> float | int | str:
    if kind in TEXTS:
        return _latency(part, value)
    if kind in PROBABILITIES:
        try:
            p = float(value)
        except ValueError:
            raise FaultSpecError(f"{part!r}: {kind} needs a probability 0..1") from None
        if not 0.0 <= p <= 1.0:
            raise FaultSpecError(f"{part!r}: {kind} needs a probability 0..1")
        return p
    if kind not in OTHERS:
        raise FaultSpecError(
            f"{part!r}: unknown fault {kind!r} "
            f"(faults: {', '.join([*PROBABILITIES, *OTHERS, *TEXTS])})"
        )
    try:
        number = OTHERS[kind](value)
    except ValueError:
        raise FaultSpecError(f"{part!r}: {kind} needs a {OTHERS[kind].__name__}") from None
    if number < 0:
        raise FaultSpecError(f"{part!r}: {kind} cannot be negative")
    return number


def _latency(part: str, value: str) -> str:
    """`aws` or a profile file's path, refused here (so at start) when it cannot be replayed."""
    if not value:
        raise FaultSpecError(f"{part!r}: latency needs aws or a profile file's path")
    try:
        load_profile(value)
    except LatencyProfileError as exc:
        raise FaultSpecError(f"{part!r}: {exc}") from None
    return value


def aws_error(code: str, status: int, operation: str, message: str = "") -> ClientError:
    """An error shaped as botocore raises AWS's answers, so the app's own handling runs."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": message or f"{code} (injected)", "Type": "Sender"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


class Nemesis:
    """The seeded decisions of one server process, and the counts of what it injected."""

    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.injected: Counter[str] = Counter()
        # Decisions come from the event loop and from simulate's own thread alike.
        self._lock = threading.Lock()

    @classmethod
    def from_text(cls, text: str | None) -> Nemesis:
        return cls(FaultSpec.parse(text))

    def strikes(self, kind: str) -> bool:
        """Whether fault `kind` (a probability) strikes this operation; counted when it does."""
        p = float(getattr(self.spec, kind))
        if p <= 0:
            return False
        with self._lock:
            hit = self.rng.random() < p
            if hit:
                self.injected[kind] += 1
        return hit

    def count(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.injected[kind] += n

    def uniform(self, low: float, high: float) -> float:
        with self._lock:
            return self.rng.uniform(low, high)

    def expovariate(self, rate: float) -> float:
        with self._lock:
            return self.rng.expovariate(rate)

    def choice(self, items: list[str]) -> str:
        with self._lock:
            return self.rng.choice(items)

    def value(self, kind: str) -> float:
        """The kind's setting, 0 when off (for the wire faults, `semichat/aws/wire/`)."""
        return float(getattr(self.spec, kind) or 0)

    def failure_code(self) -> tuple[str, int]:
        """One of the errors AWS fails a call with, (code, HTTP status), by the seeded RNG."""
        with self._lock:
            return self.rng.choice(FAILURES)

    def stream_cut_after(self) -> float | None:
        """Seconds until this stream is cut, or None when streams are not cut."""
        if not self.spec.stream_cut:
            return None
        return self.uniform(0.5, 1.5) * self.spec.stream_cut

    def stall_after(self) -> float | None:
        """Seconds until this stream stalls (counted as `stall`), or None when it does not."""
        if not self.strikes("stall"):
            return None
        return self.uniform(1.0, 5.0)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(sorted(self.injected.items()))
        return {"spec": self.spec.describe(), "injected": counts}
