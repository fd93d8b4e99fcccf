"""Provisioning as code: generated files are current, the IAM policy covers exactly what the server
calls, and `semichat provision` creates tables and users' queues. The CloudFormation template
(the CDK app's) is checked in test_infra.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from semichat.aws.iam import server_policy
from semichat.aws.tables import TABLE_SPECS, tables_document
from semichat.cli import dump_json, main
from semichat.server.delivery.routing.naming import user_queue_name
from semichat.server.provisioning import parse_users, provision
from semichat.settings import ROUTINGS, Settings

from .conftest import Backend, make_settings

ROOT = Path(__file__).resolve().parent.parent
SEMICHAT = ROOT / "semichat"
REGENERATE = "regenerate with `make generated`"


def test_committed_tables_json_is_current() -> None:
    committed = (ROOT / "localstack" / "tables.json").read_text()
    assert committed == dump_json(tables_document(Settings().table_prefix)), REGENERATE


def _policy(preprovisioned: bool) -> dict[str, Any]:
    return server_policy(
        region="eu-west-1",
        account="123456789012",
        table_prefix="prod-",
        queue_prefix="chat-",
        preprovisioned=preprovisioned,
    )


def _actions(policy: dict[str, Any], service: str) -> set[str]:
    return {a for st in policy["Statement"] for a in st["Action"] if a.startswith(service + ":")}


def test_policies_are_scoped_to_the_prefixes() -> None:
    for preprovisioned in (False, True):
        policy = _policy(preprovisioned)
        resources = [r for st in policy["Statement"] for r in st["Resource"]]
        assert "arn:aws:sqs:eu-west-1:123456789012:chat-*" in resources
        tables = [r for r in resources if ":dynamodb:" in r]
        assert tables == [
            f"arn:aws:dynamodb:eu-west-1:123456789012:table/prod-{s.logical_name}"
            for s in TABLE_SPECS
        ]
        assert not any(r.endswith(":*") or r == "*" for r in resources)


def test_preprovisioned_policy_cannot_create_queues() -> None:
    lazy, ahead = _actions(_policy(False), "sqs"), _actions(_policy(True), "sqs")
    assert "sqs:CreateQueue" in lazy and "sqs:CreateQueue" not in ahead
    assert "sqs:GetQueueUrl" in ahead
    assert lazy - {"sqs:CreateQueue"} == ahead - {"sqs:GetQueueUrl"}


# The server's AWS calls, found in its source: `<client>.<operation>(`.
_CALL = re.compile(
    r"(?P<client>self\._sqs|self\._db|clients\.sqs|clients\.dynamodb)\.(?P<op>[a-z_]+)\("
)
_SERVICE = {
    "self._sqs": "sqs",
    "clients.sqs": "sqs",
    "self._db": "dynamodb",
    "clients.dynamodb": "dynamodb",
}
# Transactions are authorized per item action (DynamoDB developer guide, "Using IAM with
# DynamoDB transactions"): the server's transaction only Puts.
# SQS batch calls are authorized as their single action.
_AUTHORIZED_AS = {"transact_write_items": "put_item", "delete_message_batch": "delete_message"}


def _camel(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))


@pytest.mark.parametrize("service", ["sqs", "dynamodb"])
def test_lazy_policy_allows_every_call_the_server_makes(service: str) -> None:
    calls: set[str] = set()
    # The server's AWS layers and handlers; aws/ is the deployer's.
    for name in ("server/delivery/sqs.py", "server/chat/store.py", "server/api/handlers.py"):
        for match in _CALL.finditer((SEMICHAT / name).read_text()):
            if _SERVICE[match["client"]] == service:
                calls.add(_AUTHORIZED_AS.get(match["op"], match["op"]))
    assert calls, "found no AWS calls: has the client attribute been renamed?"
    needed = {f"{service}:{_camel(op)}" for op in calls}
    # Each routing strategy's policy grants what it calls (tests/test_strategies.py); together
    # they cover the whole layer.
    granted = set().union(*(_actions(_routing_policy(r), service) for r in ROUTINGS))
    assert needed <= granted
    assert f"{service}:TransactWriteItems" not in granted


def _routing_policy(routing: str) -> dict[str, Any]:
    return server_policy(
        region="eu-west-1",
        account="123456789012",
        table_prefix="prod-",
        queue_prefix="chat-",
        routing=routing,
    )


def _printed(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    main(["provision", "--print", *args])
    return capsys.readouterr().out


@pytest.mark.slow  # the CloudFormation template is synthesized by the CDK app
def test_print_commands_print_the_committed_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert _printed(capsys, "tables") == (ROOT / "localstack" / "tables.json").read_text()
    cloudformation = (ROOT / "infra" / "cloudformation.json").read_text()
    assert _printed(capsys, "cloudformation") == cloudformation


def _statements(policy: dict[str, Any]) -> tuple[set[str], set[str]]:
    actions = {a for st in policy["Statement"] for a in st["Action"]}
    resources = set()
    for st in policy["Statement"]:
        resources |= {st["Resource"]} if isinstance(st["Resource"], str) else set(st["Resource"])
    return actions, resources


@pytest.mark.parametrize("preprovisioned", [True, False])
def test_print_policy_follows_its_flags(
    capsys: pytest.CaptureFixture[str], preprovisioned: bool
) -> None:
    args = ["policy", "--account-id", "111122223333", "--region", "eu-west-1"]
    args += ["--table-prefix", "tp-", "--queue-prefix", "qp-"]
    printed = _printed(capsys, *args, *(["--preprovisioned"] if preprovisioned else []))
    actions, resources = _statements(json.loads(printed))
    # Spelled out here, not derived from the code that builds the policy.
    assert resources == {
        "arn:aws:sqs:eu-west-1:111122223333:qp-*",
        "arn:aws:dynamodb:eu-west-1:111122223333:table/tp-Conversations",
        "arn:aws:dynamodb:eu-west-1:111122223333:table/tp-Messages",
        "arn:aws:dynamodb:eu-west-1:111122223333:table/tp-Idempotency",
        "arn:aws:dynamodb:eu-west-1:111122223333:table/tp-ChatUserQueue",
        "arn:aws:dynamodb:eu-west-1:111122223333:table/tp-Connections",
    }
    assert ("sqs:GetQueueUrl" in actions) is preprovisioned
    assert ("sqs:CreateQueue" in actions) is not preprovisioned
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "dynamodb:PutItem"} <= actions


def test_print_tables_follows_the_table_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    printed = json.loads(_printed(capsys, "tables", "--table-prefix", "x-"))
    assert sorted(t["createTable"]["TableName"] for t in printed) == [
        "x-ChatUserQueue",
        "x-Connections",
        "x-Conversations",
        "x-Idempotency",
        "x-Messages",
    ]


def test_users_come_from_flag_and_file(tmp_path: Path) -> None:
    users_file = tmp_path / "users.txt"
    users_file.write_text("carol\n# a comment\n\nbob  # again\ndave\n")
    assert parse_users("alice, bob", users_file) == ["alice", "bob", "carol", "dave"]


async def test_provision_creates_tables_queues_and_mappings(
    backend: Backend, sqs: Any, dynamodb: Any
) -> None:
    settings = make_settings(backend)
    users = ["alice", "bob.smith@example.com"]
    first = await provision(settings, users)
    assert sorted(first.tables_created) == sorted(
        s.name(settings.table_prefix) for s in TABLE_SPECS
    )
    for user in users:
        url = first.queues[user]
        assert url.endswith("/" + user_queue_name(settings.queue_prefix, user))
        assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    items = dynamodb.scan(TableName=f"{settings.table_prefix}ChatUserQueue")["Items"]
    assert {i["userId"]["S"]: i["queueUrl"]["S"] for i in items} == first.queues
    again = await provision(settings, users)  # idempotent: nothing new, same queues
    assert again.tables_created == []
    assert again.queues == first.queues


def test_provision_cli_against_the_backend(
    backend: Backend, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = make_settings(backend).queue_prefix
    main(
        [
            "provision",
            "--backend",
            "localstack" if backend.name == "localstack" else "embedded",
            "--dynamodb-endpoint",
            backend.dynamodb_endpoint,
            "--sqs-endpoint",
            backend.sqs_endpoint,
            "--table-prefix",
            prefix,
            "--queue-prefix",
            prefix,
            "--users",
            "erin,frank",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert sorted(report["queues"]) == ["erin", "frank"]
    listed = sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"]
    assert sorted(listed) == sorted(report["queues"].values())


def test_provision_refuses_bad_user_ids() -> None:
    with pytest.raises(SystemExit, match="user id"):
        main(
            [
                "provision",
                "--backend",
                "aws",
                "--endpoint-url",
                "http://127.0.0.1:9",
                "--users",
                "a b",
            ]
        )
