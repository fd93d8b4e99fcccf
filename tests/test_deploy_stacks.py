"""The compute tier as `make synth` synthesizes it (default context: token mode), read back.

Synthesized once for the module (jsii starts Node.js: slow). Every allowed pairing is a stack and
every other is refused in one line; cdk-nag finds nothing unexplained; each stack's role holds
its strategy's policy and nothing else beyond its logs; the timeouts in the templates obey
`timeouts.py`'s rules (and a template changed to break them fails them); the image's command,
run here with a task definition's or function's environment, answers its health check.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from cfnlint.api import lint

from semichat.aws.iam import server_policy
from semichat.cli import dump_json
from semichat.settings import ROUTINGS

from .image_helpers import first_status, run_image_command

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("aws_cdk") is None and os.environ.get("CI") != "true",
    reason="the CDK app needs the infra extra: make install-infra",
)

# What each tier's stack suppresses, each with a reason (checked non-empty).
FARGATE_SUPPRESSED = ["EC23", "ECS2", "ELB2", "IAM5", "IAM5"]
FUNCTION_SUPPRESSED = ["IAM5"]
LINT_REGIONS = ["us-east-1", "eu-west-1", "ap-northeast-1"]
LOG_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}
# Deploy-time values, as CloudFormation would resolve them.
PARAMETERS = {
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::AccountId": "123456789012",
    "AuthJwksUrl": "https://issuer.example/.well-known/jwks.json",
    "AuthIssuer": "https://issuer.example",
    "AuthAudience": "semichat",
}


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from semichat.deploy.synthesis import synthesize_app

    yield synthesize_app(tmp_path_factory.mktemp("cdk.out"))


def _by_name(deployments: Any) -> dict[str, Any]:
    return {p.stack_name: (p, s) for p, s in deployments.compute.items()}


def test_every_allowed_pairing_is_a_stack_and_the_others_are_refused_in_one_line(
    deployments: Any,
) -> None:
    built = {(p.routing, p.deployment) for p in deployments.compute}
    assert built == {(r, "fargate") for r in ROUTINGS} | {
        (r, "lambda") for r in ("per_user_queue", "preprovisioned", "fifo")
    }
    refused = {(p.routing, p.deployment): why for p, why in deployments.refused.items()}
    assert set(refused) == {("sharded", "lambda"), ("instance", "lambda")}
    assert all("\n" not in why and "Fargate only" in why for why in refused.values())


def test_cdk_nag_finds_nothing_unexplained_in_any_stack(deployments: Any) -> None:
    for stack in deployments.stacks:
        assert stack.nag_rows, f"{stack.name}: cdk-nag wrote no report"
        assert stack.unexplained == [], stack.name
    for pairing, stack in deployments.compute.items():
        suppressed = [r for r in stack.nag_rows if r["Compliance"] == "Suppressed"]
        expected = FARGATE_SUPPRESSED if pairing.deployment == "fargate" else FUNCTION_SUPPRESSED
        rules = sorted(r["Rule ID"].removeprefix("AwsSolutions-") for r in suppressed)
        assert rules == expected, stack.name
        assert all(len(r["Exception Reason"]) > 40 for r in suppressed), stack.name


def test_templates_pass_cfn_lint(deployments: Any) -> None:
    # W3005: the CDK's own DependsOn beside a Ref (listener before service, policy before
    # function), kept by the CDK on purpose for ordering. Regions: a few where function URLs
    # exist (not every region has them, nor response streaming).
    for stack in deployments.compute.values():
        problems = [
            m
            for m in lint(dump_json(stack.template), regions=LINT_REGIONS)
            if m.rule.id[0] in "EW" and m.rule.id != "W3005"
        ]
        assert problems == [], (stack.name, [str(m) for m in problems])


def _resolve(value: Any) -> Any:
    """A template value with `Ref`s to `PARAMETERS` and `Fn::Join`s of them resolved."""
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in PARAMETERS:
            return PARAMETERS[value["Ref"]]
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(str(_resolve(p)) for p in parts)
        return {k: _resolve(v) for k, v in value.items()}
    return value


def _role_policies(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The policy documents attached to the server's role (task role or function role)."""
    (role,) = [
        name
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and name.startswith("ServerRole")
    ]
    return [
        r["Properties"]["PolicyDocument"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
    ]


def _statements(document: dict[str, Any]) -> set[tuple[Any, ...]]:
    """A policy's statements compared by meaning: the CDK writes a list of one as its item."""
    return {
        (
            s.get("Sid"),
            s["Effect"],
            frozenset(_list(s["Action"])),
            frozenset(_key(r) for r in _list(s["Resource"])),
        )
        for s in _resolve(document)["Statement"]
    }


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _key(value: Any) -> str:
    """A resource as something a set holds (a log group's ARN is an `Fn::GetAtt`)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def test_each_stacks_role_holds_its_strategys_policy_and_only_its_logs_beside(
    deployments: Any,
) -> None:
    for pairing, stack in deployments.compute.items():
        documents = [_statements(d) for d in _role_policies(stack.template)]
        expected = _statements(
            server_policy(
                region="us-east-1",
                account="123456789012",
                table_prefix="semichat-",
                queue_prefix="semichat-",
                routing=pairing.routing,
            )
        )
        assert expected in documents, stack.name
        others = [d for d in documents if d != expected]
        actions = {a for d in others for s in d for a in s[2]}
        # The Lambda role writes its own logs; ECS writes a task's through its execution role.
        assert actions == (LOG_ACTIONS if pairing.deployment == "lambda" else set()), stack.name
        granted = {a for d in documents for s in d for a in s[2]}
        assert ("sqs:CreateQueue" in granted) is (pairing.routing != "preprovisioned")
        assert ("sqs:DeleteQueue" in granted) is (pairing.routing == "instance")


def test_template_timeouts_are_the_derived_ones_and_obey_the_rules(deployments: Any) -> None:
    from semichat.deploy import templates

    t = deployments.timeouts
    for pairing, stack in deployments.compute.items():
        assert templates.violations(stack.template) == [], stack.name
        assert templates.server_timeouts(stack.template) == t.server
        if pairing.deployment == "fargate":
            assert templates.fargate_timeouts(stack.template) == t.fargate
        else:
            assert templates.function_timeouts(stack.template) == t.function


def _set_attribute(resource: dict[str, Any], key: str, name: str, value: str) -> None:
    for attribute in resource["Properties"][key]:
        if attribute["Key"] == name:
            attribute["Value"] = value


def test_a_template_whose_alb_idle_timeout_drops_to_the_heartbeat_fails_the_rules(
    deployments: Any,
) -> None:
    from semichat.deploy import templates

    _, stack = _by_name(deployments)["SemichatFargatePerUserQueue"]
    for idle in ("10", "5"):
        broken = copy.deepcopy(stack.template)
        balancer = templates.only(broken, templates.LOAD_BALANCER)
        _set_attribute(balancer, "LoadBalancerAttributes", "idle_timeout.timeout_seconds", idle)
        (problem,) = templates.violations(broken)
        assert "ALB idle timeout" in problem


def test_a_template_whose_lambda_timeout_drops_below_the_stream_maximum_fails_the_rules(
    deployments: Any,
) -> None:
    from semichat.deploy import templates

    _, stack = _by_name(deployments)["SemichatLambdaPerUserQueue"]
    broken = copy.deepcopy(stack.template)
    templates.only(broken, templates.FUNCTION)["Properties"]["Timeout"] = 299
    (problem,) = templates.violations(broken)
    assert "Lambda timeout 299 s is below the longest stream" in problem


def test_the_alb_checks_healthz_and_the_function_url_streams_through_the_adapter(
    deployments: Any,
) -> None:
    from semichat.deploy import templates

    for pairing, stack in deployments.compute.items():
        if pairing.deployment == "fargate":
            group = templates.only(stack.template, templates.TARGET_GROUP)["Properties"]
            assert group["HealthCheckPath"] == "/healthz"
            assert group["Matcher"] == {"HttpCode": "200"}
        else:
            url = templates.only(stack.template, templates.FUNCTION_URL)["Properties"]
            assert url["InvokeMode"] == "RESPONSE_STREAM"
            env = templates.server_environment(stack.template)
            assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
            assert env["AWS_LWA_PORT"] == env["SEMICHAT_PORT"] == "8080"
            assert env["AWS_LWA_READINESS_CHECK_PATH"] == "/healthz"
            assert env["SEMICHAT_HOST"] == "127.0.0.1"  # where the adapter calls it
        assert "ServiceUrl" in stack.template["Outputs"]


@pytest.mark.backend
@pytest.mark.parametrize("stack_name", ["SemichatFargateInstance", "SemichatLambdaPerUserQueue"])
def test_the_images_command_with_the_deployments_environment_answers_its_health_check(
    deployments: Any, stack_name: str
) -> None:
    from semichat.deploy import templates

    pairing, stack = _by_name(deployments)[stack_name]
    env = _resolve(templates.server_environment(stack.template))
    assert all(isinstance(v, str) for v in env.values()), env
    if pairing.deployment == "fargate":
        path = templates.only(stack.template, templates.TARGET_GROUP)["Properties"][
            "HealthCheckPath"
        ]
    else:
        path = env["AWS_LWA_READINESS_CHECK_PATH"]
    with run_image_command(env) as server:
        status, body = first_status(server.base + path)
    assert status == 200
    assert body["routing"] == pairing.routing
    # What ran is the deployment's environment: only backend, host and port are local.
    assert server.environment["SEMICHAT_STREAM_MAX_SECONDS"] == env["SEMICHAT_STREAM_MAX_SECONDS"]
    assert server.environment["SEMICHAT_AUTH"] == "token"
