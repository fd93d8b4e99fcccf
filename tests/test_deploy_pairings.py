"""Which strategy runs on which tier, and the deployer's choices: pure, no CDK."""

from __future__ import annotations

import pytest

from semichat.deploy.config import ANYONE, DeployConfig, DeployConfigError
from semichat.deploy.pairings import DEPLOYMENTS, Pairing, every_pairing, refusal
from semichat.settings import ROUTINGS

ALLOWED = {Pairing(r, "fargate") for r in ROUTINGS} | {
    Pairing(r, "lambda") for r in ("per_user_queue", "preprovisioned", "fifo")
}


def test_every_strategy_runs_on_fargate_and_the_per_user_ones_on_lambda() -> None:
    assert len(every_pairing()) == len(ROUTINGS) * len(DEPLOYMENTS)
    assert {p for p in every_pairing() if refusal(p) is None} == ALLOWED


@pytest.mark.parametrize("routing", ["sharded", "instance"])
def test_dispatching_strategies_are_refused_on_lambda_in_one_line(routing: str) -> None:
    reason = refusal(Pairing(routing, "lambda"))
    assert reason is not None and "\n" not in reason
    assert routing in reason and "Fargate only" in reason


def test_sharded_runs_as_one_fargate_task_and_is_refused_with_more() -> None:
    sharded = Pairing("sharded", "fargate")
    assert refusal(sharded, DeployConfig(tasks=1)) is None
    reason = refusal(sharded, DeployConfig(tasks=2))
    assert reason is not None and "one task" in reason and "asked for 2" in reason
    # The others take any number of tasks.
    assert refusal(Pairing("instance", "fargate"), DeployConfig(tasks=4)) is None


def test_stack_names_say_tier_and_strategy() -> None:
    assert Pairing("per_user_queue", "fargate").stack_name == "SemichatFargatePerUserQueue"
    assert Pairing("fifo", "lambda").stack_name == "SemichatLambdaFifo"


def _config(**context: str) -> DeployConfig:
    return DeployConfig.from_context(lambda key: context.get(key))


def test_context_defaults_are_token_mode_and_a_300_second_lifetime() -> None:
    assert _config() == DeployConfig()
    assert DeployConfig().auth == "token" and DeployConfig().stream_max_seconds == 300


def test_context_values_arrive_as_strings_and_round_trip() -> None:
    config = _config(
        **{
            "semichat:auth": "demo",
            "semichat:allowed-cidr": "203.0.113.7/32",
            "semichat:tasks": "1",
            "semichat:stream-max-seconds": "120",
            "semichat:processes": "2",
        }
    )
    assert config == DeployConfig(
        auth="demo", allowed_cidr="203.0.113.7/32", tasks=1, stream_max_seconds=120, processes=2
    )
    assert _config(**config.context()) == config


def test_demo_identity_needs_to_be_told_who_may_call() -> None:
    with pytest.raises(DeployConfigError, match="allowed-cidr") as caught:
        _config(**{"semichat:auth": "demo"})
    assert "\n" not in str(caught.value)


def test_demo_identity_on_lambda_is_refused_unless_open_to_anyone_on_purpose() -> None:
    per_user = Pairing("per_user_queue", "lambda")
    narrow = DeployConfig(auth="demo", allowed_cidr="203.0.113.7/32")
    assert "function URL cannot filter" in (refusal(per_user, narrow) or "")
    assert refusal(Pairing("per_user_queue", "fargate"), narrow) is None
    assert refusal(per_user, DeployConfig(auth="demo", allowed_cidr=ANYONE)) is None


def test_processes_are_a_fargate_task_size_and_not_for_lambda() -> None:
    two = DeployConfig(processes=2)
    assert refusal(Pairing("sharded", "fargate"), two) is None
    assert "one per vCPU" in (refusal(Pairing("fifo", "fargate"), DeployConfig(processes=3)) or "")
    assert "for Fargate" in (refusal(Pairing("fifo", "lambda"), two) or "")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("auth", "none"),
        ("allowed-cidr", "everyone"),
        ("stream-max-seconds", "long"),
        ("tasks", "-1"),
        ("tasks", "1.5"),
        ("processes", "two"),
    ],
)
def test_bad_context_values_are_refused_in_one_line(key: str, value: str) -> None:
    with pytest.raises(DeployConfigError, match=f"semichat:{key}") as caught:
        _config(**{"semichat:allowed-cidr": "10.0.0.0/8"} | {f"semichat:{key}": value})
    assert "\n" not in str(caught.value)
