"""Every timeout of a deployment, derived from one setting: the stream's maximum lifetime.

A stream rotates (`STREAM_MAX_SECONDS`): past its lifetime it ends at the next return of its long
poll, so it lasts at most `stream_max + wait` seconds (the SQS wait, 20 s), and the client
reconnects at once on its `retry:` hint. Everything in front of the server is set from that:

- heartbeat (`HEARTBEAT_SECONDS`): the settings' default (10 s: Locust's 60 s network timeout and
  proxies want less), shortened so that a stream carries at least `HEARTBEATS_PER_STREAM`;
- ALB idle timeout: `IDLE_HEARTBEATS` heartbeats, so the load balancer closes a stream only after
  that many pings in a row failed to arrive;
- target group deregistration delay: the longest stream plus `WRITE_MARGIN_S`, so a draining task
  (deployments, scale-in) has every stream rotate before the ALB cuts what is left;
- Lambda function timeout: the same bound, so a stream rotates before its invocation is killed.

`derive` computes them; `fargate_violations` and `function_violations` are the rules, stated
over what a synthesized template says (`semichat/deploy/templates.py` reads it back), so a
template set by hand is judged the same way as a derived one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from semichat.settings import Settings

DEFAULT_STREAM_MAX_SECONDS = 300.0
# The long poll's wait (SQS caps it at 20 s) and the heartbeat ceiling: the server's defaults.
WAIT_SECONDS = Settings.wait_seconds
HEARTBEAT_CEILING_S = Settings.heartbeat_seconds
HEARTBEATS_PER_STREAM = 6
IDLE_HEARTBEATS = 3
# After the last poll returns: writing and acknowledging what it brought, ending the response.
WRITE_MARGIN_S = 10.0
# AWS's own bounds.
ALB_IDLE_TIMEOUT_MAX_S = 4000
DEREGISTRATION_DELAY_MAX_S = 3600
LAMBDA_TIMEOUT_MAX_S = 900


@dataclass(frozen=True)
class ServerTimeouts:
    """What the server is told (`SEMICHAT_*`)."""

    stream_max_seconds: float
    heartbeat_seconds: float
    wait_seconds: float = WAIT_SECONDS

    @property
    def longest_stream_seconds(self) -> float:
        """A stream past its lifetime still waits for its last poll to return."""
        return self.stream_max_seconds + self.wait_seconds


@dataclass(frozen=True)
class FargateTimeouts:
    server: ServerTimeouts
    alb_idle_timeout_seconds: float
    deregistration_delay_seconds: float


@dataclass(frozen=True)
class FunctionTimeouts:
    server: ServerTimeouts
    function_timeout_seconds: float


@dataclass(frozen=True)
class Timeouts:
    """The derivation's result, for both compute tiers."""

    server: ServerTimeouts
    alb_idle_timeout_seconds: int
    deregistration_delay_seconds: int
    function_timeout_seconds: int

    @property
    def fargate(self) -> FargateTimeouts:
        return FargateTimeouts(
            self.server, self.alb_idle_timeout_seconds, self.deregistration_delay_seconds
        )

    @property
    def function(self) -> FunctionTimeouts:
        return FunctionTimeouts(self.server, self.function_timeout_seconds)


def derive(stream_max_seconds: float = DEFAULT_STREAM_MAX_SECONDS) -> Timeouts:
    """All timeouts from the stream's maximum lifetime."""
    heartbeat = min(HEARTBEAT_CEILING_S, stream_max_seconds / HEARTBEATS_PER_STREAM)
    server = ServerTimeouts(stream_max_seconds=stream_max_seconds, heartbeat_seconds=heartbeat)
    drained = math.ceil(server.longest_stream_seconds + WRITE_MARGIN_S)
    return Timeouts(
        server=server,
        alb_idle_timeout_seconds=math.ceil(IDLE_HEARTBEATS * heartbeat),
        deregistration_delay_seconds=drained,
        function_timeout_seconds=drained,
    )


def server_violations(t: ServerTimeouts) -> list[str]:
    problems = []
    if t.stream_max_seconds <= 0:
        problems.append(
            "STREAM_MAX_SECONDS must be above 0: streams that never rotate outlive every "
            "timeout in front of them"
        )
    elif t.heartbeat_seconds >= t.stream_max_seconds:
        problems.append(
            f"heartbeat {t.heartbeat_seconds:g} s is not below the stream's lifetime "
            f"{t.stream_max_seconds:g} s"
        )
    if t.heartbeat_seconds <= 0:
        problems.append("HEARTBEAT_SECONDS must be above 0")
    return problems


def fargate_violations(t: FargateTimeouts) -> list[str]:
    """The rules of the Fargate tier; empty when every one holds."""
    problems = server_violations(t.server)
    if t.alb_idle_timeout_seconds <= t.server.heartbeat_seconds:
        problems.append(
            f"ALB idle timeout {t.alb_idle_timeout_seconds:g} s is not above the heartbeat "
            f"{t.server.heartbeat_seconds:g} s: the ALB would close streams between pings"
        )
    if t.alb_idle_timeout_seconds > ALB_IDLE_TIMEOUT_MAX_S:
        problems.append(f"ALB idle timeout above AWS's {ALB_IDLE_TIMEOUT_MAX_S} s")
    if t.deregistration_delay_seconds < t.server.longest_stream_seconds:
        problems.append(
            f"deregistration delay {t.deregistration_delay_seconds:g} s is below the longest "
            f"stream {t.server.longest_stream_seconds:g} s (lifetime + wait): a draining task's "
            "streams would be cut instead of rotating"
        )
    if t.deregistration_delay_seconds > DEREGISTRATION_DELAY_MAX_S:
        problems.append(f"deregistration delay above AWS's {DEREGISTRATION_DELAY_MAX_S} s")
    return problems


def function_violations(t: FunctionTimeouts) -> list[str]:
    """The rules of the Lambda tier; empty when every one holds."""
    problems = server_violations(t.server)
    if t.function_timeout_seconds < t.server.longest_stream_seconds:
        problems.append(
            f"Lambda timeout {t.function_timeout_seconds:g} s is below the longest stream "
            f"{t.server.longest_stream_seconds:g} s (lifetime + wait): invocations would be "
            "killed before their stream rotates"
        )
    if t.function_timeout_seconds > LAMBDA_TIMEOUT_MAX_S:
        problems.append(
            f"Lambda timeout {t.function_timeout_seconds:g} s above AWS's "
            f"{LAMBDA_TIMEOUT_MAX_S} s: STREAM_MAX_SECONDS at most "
            f"{LAMBDA_TIMEOUT_MAX_S - WAIT_SECONDS - WRITE_MARGIN_S:g} on Lambda"
        )
    return problems
