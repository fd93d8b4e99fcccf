"""The compute tier's timeouts: derived from the stream's lifetime, and the rules they obey.

Pure: no CDK. `test_deploy_stacks.py` applies the same rules to synthesized templates.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from semichat.deploy.timeouts import (
    LAMBDA_TIMEOUT_MAX_S,
    WAIT_SECONDS,
    WRITE_MARGIN_S,
    ServerTimeouts,
    derive,
    fargate_violations,
    function_violations,
)
from semichat.settings import Settings


def test_the_default_lifetime_gives_the_servers_heartbeat_and_timeouts_above_it() -> None:
    t = derive()
    assert t.server.stream_max_seconds == 300
    assert t.server.heartbeat_seconds == Settings().heartbeat_seconds == 10
    assert t.server.wait_seconds == Settings().wait_seconds == 20
    assert t.alb_idle_timeout_seconds == 30
    assert t.deregistration_delay_seconds == t.function_timeout_seconds == 330
    assert fargate_violations(t.fargate) == []
    assert function_violations(t.function) == []


def test_a_short_lifetime_shortens_the_heartbeat_and_with_it_the_idle_timeout() -> None:
    t = derive(30)
    assert t.server.heartbeat_seconds == 5
    assert t.alb_idle_timeout_seconds == 15
    assert t.function_timeout_seconds == 30 + WAIT_SECONDS + WRITE_MARGIN_S


@given(st.floats(min_value=1, max_value=LAMBDA_TIMEOUT_MAX_S - WAIT_SECONDS - WRITE_MARGIN_S))
def test_every_lifetime_lambda_allows_derives_timeouts_that_obey_every_rule(life: float) -> None:
    t = derive(life)
    assert fargate_violations(t.fargate) == []
    assert function_violations(t.function) == []


def test_an_alb_idle_timeout_at_or_below_the_heartbeat_fails() -> None:
    t = derive().fargate
    for idle in (t.server.heartbeat_seconds, t.server.heartbeat_seconds - 1):
        (problem,) = fargate_violations(replace(t, alb_idle_timeout_seconds=idle))
        assert "not above the heartbeat" in problem
    assert fargate_violations(replace(t, alb_idle_timeout_seconds=11)) == []


def test_a_heartbeat_raised_to_the_idle_timeout_fails() -> None:
    t = derive().fargate
    server = replace(t.server, heartbeat_seconds=t.alb_idle_timeout_seconds)
    assert any("heartbeat" in p for p in fargate_violations(replace(t, server=server)))


def test_a_lambda_timeout_below_the_streams_maximum_fails() -> None:
    t = derive().function
    (problem,) = function_violations(replace(t, function_timeout_seconds=299))
    assert "below the longest stream" in problem


def test_a_lambda_timeout_above_the_maximum_but_below_its_last_poll_fails_too() -> None:
    # Past its lifetime a stream waits for its poll: lifetime + 20 s is the bound.
    t = derive().function
    assert function_violations(replace(t, function_timeout_seconds=310)) != []
    assert function_violations(replace(t, function_timeout_seconds=320)) == []


def test_a_deregistration_delay_shorter_than_a_stream_fails() -> None:
    t = derive().fargate
    (problem,) = fargate_violations(replace(t, deregistration_delay_seconds=300))
    assert "draining task" in problem


def test_streams_that_never_rotate_fail_both_tiers() -> None:
    t = derive()
    never = ServerTimeouts(stream_max_seconds=0, heartbeat_seconds=10)
    assert any("above 0" in p for p in fargate_violations(replace(t.fargate, server=never)))
    assert any("above 0" in p for p in function_violations(replace(t.function, server=never)))


@pytest.mark.parametrize("life", [871, 3000])
def test_a_lifetime_beyond_lambdas_900_seconds_fails_there_only(life: float) -> None:
    t = derive(life)
    assert any("900" in p for p in function_violations(t.function))
    assert fargate_violations(t.fargate) == []
