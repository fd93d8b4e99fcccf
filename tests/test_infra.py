"""The CDK app: synthesized once per session (jsii starts Node.js: slow), then checked.

The committed `infra/cloudformation.json` is its output, cfn-lint finds nothing in it, the
tables follow `TABLE_SPECS`, the policy is `iam.server_policy`'s per queue strategy, and cdk-nag
reports nothing unexplained. Needs the `infra` extra (`make install-infra`, which `make test`
runs); without it these tests skip, except in CI, where they fail.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_all

from semichat.aws.iam import server_policy
from semichat.aws.tables import TABLE_SPECS
from semichat.cli import dump_json
from semichat.settings import ROUTINGS

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = "regenerate with `make generated`"


@pytest.fixture(scope="session")
def synthesis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if importlib.util.find_spec("aws_cdk") is None or importlib.util.find_spec("cdk_nag") is None:
        message = "the CDK app needs the infra extra: make install-infra"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from semichat.aws.stack import synthesize

    yield synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def template(synthesis: Any) -> dict[str, Any]:
    return synthesis.template


def test_committed_cloudformation_is_the_cdk_apps(template: dict[str, Any]) -> None:
    committed = (ROOT / "infra" / "cloudformation.json").read_text()
    assert committed == dump_json(template), REGENERATE


def test_template_passes_cfn_lint(template: dict[str, Any]) -> None:
    # Informational rules (I...) are advice, not defects; errors and warnings fail.
    problems = [m for m in lint_all(dump_json(template)) if m.rule.id[0] in "EW"]
    assert problems == [], [str(m) for m in problems]


def test_cdk_nag_reports_nothing_unexplained(synthesis: Any) -> None:
    assert synthesis.nag_rows, "cdk-nag wrote no report: did its checks run?"
    assert synthesis.unexplained == []
    suppressed = [r for r in synthesis.nag_rows if r["Compliance"] == "Suppressed"]
    # The one wildcard (queues are named per user at run time), with its reason.
    assert [(r["Rule ID"], r["Resource ID"]) for r in suppressed] == [
        ("AwsSolutions-IAM5", "Semichat/ServerPolicy")
    ]
    assert "queue" in suppressed[0]["Exception Reason"]


def _join(value: Any) -> str:
    """A `Fn::Join` of literals and `Ref`s, written the way `Fn::Sub` would."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    separator, parts = value["Fn::Join"]
    return separator.join(_join(p) for p in parts)


def test_tables_follow_the_specs(template: dict[str, Any]) -> None:
    tables = {
        _join(r["Properties"]["TableName"]): r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::DynamoDB::Table"
    }
    # Every spec, so a table added to TABLE_SPECS (a strategy's registry) is deployed too.
    assert set(tables) == {spec.name("${TablePrefix}") for spec in TABLE_SPECS}
    for spec in TABLE_SPECS:
        table = tables[spec.name("${TablePrefix}")]
        props = table["Properties"]
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["KeySchema"] == spec.create_table_kwargs("")["KeySchema"]
        ttl = props.get("TimeToLiveSpecification")
        expected = {"AttributeName": spec.ttl_attribute, "Enabled": True}
        assert ttl == (expected if spec.ttl_attribute else None)


def _resolve(value: Any, routing: str) -> Any:
    """The template's value with each `Fn::If Routing<Name>` decided for `routing`, and joins
    flattened."""
    if isinstance(value, list):
        return [_resolve(v, routing) for v in value]
    if isinstance(value, dict):
        if "Fn::If" in value:
            condition, if_true, if_false = value["Fn::If"]
            chosen = condition == "Routing" + routing.title().replace("_", "")
            return _resolve(if_true if chosen else if_false, routing)
        if "Fn::Join" in value or "Ref" in value:
            return _join(value)
        return {k: _resolve(v, routing) for k, v in value.items()}
    return value


@pytest.mark.parametrize("routing", ROUTINGS)
def test_policy_is_iams_per_routing_strategy(template: dict[str, Any], routing: str) -> None:
    policy = template["Resources"]["ServerPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    document = _resolve(policy["Properties"]["PolicyDocument"], routing)
    expected = server_policy(
        partition="${AWS::Partition}",
        region="${AWS::Region}",
        account="${AWS::AccountId}",
        table_prefix="${TablePrefix}",
        queue_prefix="${QueuePrefix}",
        routing=routing,
    )
    assert document == expected
    actions = {a for st in document["Statement"] for a in st["Action"]}
    assert ("sqs:CreateQueue" in actions) is (routing != "preprovisioned")
    assert template["Parameters"]["Routing"]["AllowedValues"] == list(ROUTINGS)
    assert template["Outputs"]["ServerPolicyArn"]["Value"] == {"Ref": "ServerPolicy"}
