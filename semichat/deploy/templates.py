"""Reading a synthesized compute stack's template back: its tier, the server's environment and
the timeouts AWS will apply, in the terms `timeouts.py`'s rules judge.

Pure functions over the template's JSON, so that a test can change one value and see a rule fail.
"""

from __future__ import annotations

from typing import Any

from semichat.deploy.timeouts import (
    HEARTBEAT_CEILING_S,
    WAIT_SECONDS,
    FargateTimeouts,
    FunctionTimeouts,
    ServerTimeouts,
    fargate_violations,
    function_violations,
)

Template = dict[str, Any]

TASK_DEFINITION = "AWS::ECS::TaskDefinition"
LOAD_BALANCER = "AWS::ElasticLoadBalancingV2::LoadBalancer"
TARGET_GROUP = "AWS::ElasticLoadBalancingV2::TargetGroup"
FUNCTION = "AWS::Lambda::Function"
FUNCTION_URL = "AWS::Lambda::Url"


def resources(template: Template, kind: str) -> list[dict[str, Any]]:
    return [r for r in template.get("Resources", {}).values() if r["Type"] == kind]


def only(template: Template, kind: str) -> dict[str, Any]:
    found = resources(template, kind)
    if len(found) != 1:
        raise ValueError(f"expected one {kind}, found {len(found)}")
    return found[0]


def deployment(template: Template) -> str:
    """`fargate` or `lambda`, from what the template holds."""
    if resources(template, TASK_DEFINITION):
        return "fargate"
    if resources(template, FUNCTION):
        return "lambda"
    raise ValueError("neither a task definition nor a function: not a compute stack")


def server_environment(template: Template) -> dict[str, Any]:
    """The server's environment variables (values as written: strings, or CloudFormation
    expressions for deploy-time ones)."""
    if deployment(template) == "fargate":
        (container,) = only(template, TASK_DEFINITION)["Properties"]["ContainerDefinitions"]
        return {e["Name"]: e["Value"] for e in container.get("Environment", [])}
    return dict(only(template, FUNCTION)["Properties"]["Environment"]["Variables"])


def server_timeouts(template: Template) -> ServerTimeouts:
    env = server_environment(template)
    return ServerTimeouts(
        stream_max_seconds=float(env.get("SEMICHAT_STREAM_MAX_SECONDS", 0)),
        # Unset, the server uses its defaults: what it would run with.
        heartbeat_seconds=float(env.get("SEMICHAT_HEARTBEAT_SECONDS", HEARTBEAT_CEILING_S)),
        wait_seconds=float(env.get("SEMICHAT_WAIT_SECONDS", WAIT_SECONDS)),
    )


def _attribute(resource: dict[str, Any], key: str, name: str) -> float | None:
    for attribute in resource["Properties"].get(key, []):
        if attribute["Key"] == name:
            return float(attribute["Value"])
    return None


def fargate_timeouts(template: Template) -> FargateTimeouts:
    # AWS's defaults where the template says nothing: 60 s idle, 300 s deregistration.
    balancer, group = only(template, LOAD_BALANCER), only(template, TARGET_GROUP)
    idle = _attribute(balancer, "LoadBalancerAttributes", "idle_timeout.timeout_seconds")
    delay = _attribute(group, "TargetGroupAttributes", "deregistration_delay.timeout_seconds")
    return FargateTimeouts(
        server=server_timeouts(template),
        alb_idle_timeout_seconds=60.0 if idle is None else idle,
        deregistration_delay_seconds=300.0 if delay is None else delay,
    )


def function_timeouts(template: Template) -> FunctionTimeouts:
    # Lambda's default timeout: 3 s.
    timeout = only(template, FUNCTION)["Properties"].get("Timeout", 3)
    return FunctionTimeouts(server_timeouts(template), function_timeout_seconds=float(timeout))


def violations(template: Template) -> list[str]:
    """The timeout rules of the template's tier, judged on what the template says."""
    if deployment(template) == "fargate":
        return fargate_violations(fargate_timeouts(template))
    return function_violations(function_timeouts(template))
