"""IAM policies for the chat server's role, derived from the table definitions and queue prefix.

Two variants: `lazy` lets the server create each user's queue on first use (the seed design);
`preprovisioned` assumes `semichat provision --users ...` created the queues and mappings ahead,
so the role cannot create queues at all.

What the server calls, and why each action is here:
- SQS: CreateQueue (first use, and re-creation of a queue deleted behind its back), SendMessage,
  ReceiveMessage, DeleteMessage, ChangeMessageVisibility (releasing an unwritten notification),
  GetQueueAttributes (operators and tests read queue depth), ListQueues (`/healthz` probes SQS
  with a prefix-filtered ListQueues). All on `arn:...:sqs:REGION:ACCOUNT:PREFIX*` only.
- DynamoDB: GetItem, PutItem, UpdateItem, Query, DescribeTable (`/healthz`), on the four tables
  by name. There is no `dynamodb:TransactWriteItems` action: AWS authorizes each item of a
  transaction by its underlying action (a `Put` needs `dynamodb:PutItem`; a `ConditionCheck`
  would need `dynamodb:ConditionCheckItem`, which the server does not use). See "Using IAM with
  DynamoDB transactions" in the DynamoDB developer guide.
Creating tables and setting their TTL is provisioning, done by a deployer, not by this role.
"""

from __future__ import annotations

from typing import Any

from semichat.aws.tables import TABLE_SPECS

POLICY_VERSION = "2012-10-17"

SQS_SERVER_ACTIONS: tuple[str, ...] = (
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:ListQueues",
)
# First use creates the queue; CreateQueue returns the URL of an existing one, so GetQueueUrl is
# not needed. Without CreateQueue the server can only find queues made for it.
SQS_LAZY_ACTIONS: tuple[str, ...] = ("sqs:CreateQueue",)
SQS_PREPROVISIONED_ACTIONS: tuple[str, ...] = ("sqs:GetQueueUrl",)

DYNAMODB_SERVER_ACTIONS: tuple[str, ...] = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "dynamodb:DescribeTable",
)


def queue_arn(partition: str, region: str, account: str, queue_prefix: str) -> str:
    return f"arn:{partition}:sqs:{region}:{account}:{queue_prefix}*"


def table_arns(partition: str, region: str, account: str, table_prefix: str) -> list[str]:
    return [
        f"arn:{partition}:dynamodb:{region}:{account}:table/{spec.name(table_prefix)}"
        for spec in TABLE_SPECS
    ]


def server_policy(
    *,
    region: str,
    account: str,
    table_prefix: str,
    queue_prefix: str,
    preprovisioned: bool = False,
    partition: str = "aws",
) -> dict[str, Any]:
    """The least-privilege identity policy for the chat server's role."""
    queues = [queue_arn(partition, region, account, queue_prefix)]
    # The variants differ in one statement only, so a template can switch that one statement.
    if preprovisioned:
        finding = {"Sid": "FindQueues", "Action": sorted(SQS_PREPROVISIONED_ACTIONS)}
    else:
        finding = {"Sid": "CreateQueues", "Action": sorted(SQS_LAZY_ACTIONS)}
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "UserQueues",
                "Effect": "Allow",
                "Action": sorted(SQS_SERVER_ACTIONS),
                "Resource": queues,
            },
            {
                "Sid": finding["Sid"],
                "Effect": "Allow",
                "Action": finding["Action"],
                "Resource": queues,
            },
            {
                "Sid": "ChatTables",
                "Effect": "Allow",
                "Action": sorted(DYNAMODB_SERVER_ACTIONS),
                "Resource": table_arns(partition, region, account, table_prefix),
            },
        ],
    }
