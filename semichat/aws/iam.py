"""IAM policies for the chat server's role, derived from the table definitions and queue prefix.

One variant per routing strategy (`ROUTING_SQS_ACTIONS`): `per_user_queue` lets the server
create each user's queue on first use (the seed design); `preprovisioned` assumes `semichat
provision --users ...` created the queues ahead, so the role cannot create queues at all;
`fifo`, `sharded` and `instance` are described beside their actions below.

What the server calls, and why each action is here:
- SQS: CreateQueue (first use, and re-creation of a queue deleted behind its back), SendMessage,
  ReceiveMessage, DeleteMessage, ChangeMessageVisibility (releasing an unwritten notification),
  GetQueueAttributes (operators and tests read queue depth), ListQueues (`/healthz` probes SQS
  with a prefix-filtered ListQueues). All on `arn:...:sqs:REGION:ACCOUNT:PREFIX*` only.
- DynamoDB: GetItem, PutItem, UpdateItem, Query, DescribeTable (`/healthz`), on the tables by
  name. There is no `dynamodb:TransactWriteItems` action: AWS authorizes each item of a
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
    "sqs:DeleteMessage",  # also authorizes DeleteMessageBatch (the dispatchers')
    "sqs:GetQueueAttributes",
    "sqs:ListQueues",
)
# First use creates the queue; CreateQueue returns the URL of an existing one, so GetQueueUrl is
# not needed. Without CreateQueue the server can only find queues made for it.
SQS_LAZY_ACTIONS: tuple[str, ...] = ("sqs:CreateQueue",)
SQS_PREPROVISIONED_ACTIONS: tuple[str, ...] = ("sqs:GetQueueUrl",)
# A stream that could not write a notification hands it back (visibility 0) to its user's queue.
SQS_RELEASE_ACTIONS: tuple[str, ...] = ("sqs:ChangeMessageVisibility",)

DYNAMODB_SERVER_ACTIONS: tuple[str, ...] = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "dynamodb:DescribeTable",
    # Sends finishing together mark their idempotency records notified in one request.
    "dynamodb:BatchWriteItem",
)

# What each routing strategy adds to the common actions, and why:
# - per_user_queue, fifo: create a user's queue on first use; release unwritten notifications.
# - preprovisioned: only look queues up; release unwritten notifications.
# - sharded: create the shard queues at start (idempotent); its dispatchers delete in batches
#   and never release (the hand-off to local streams is the acknowledgement).
# - instance: create its own queue at start and delete it at shutdown, and the janitor deletes
#   dead instances' queues (DeleteQueue); the connection registry removes entries
#   (DeleteItem) and refreshes them in batches (BatchWriteItem, in the common set).
ROUTING_SQS_ACTIONS: dict[str, tuple[str, ...]] = {
    "per_user_queue": SQS_LAZY_ACTIONS + SQS_RELEASE_ACTIONS,
    "fifo": SQS_LAZY_ACTIONS + SQS_RELEASE_ACTIONS,
    "preprovisioned": SQS_PREPROVISIONED_ACTIONS + SQS_RELEASE_ACTIONS,
    "sharded": SQS_LAZY_ACTIONS,
    "instance": (*SQS_LAZY_ACTIONS, "sqs:DeleteQueue"),
}
ROUTING_DYNAMODB_ACTIONS: dict[str, tuple[str, ...]] = {
    "instance": ("dynamodb:DeleteItem",),
}


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
    routing: str | None = None,
) -> dict[str, Any]:
    """The least-privilege identity policy for the chat server's role under `routing`
    (`preprovisioned=True` is the older spelling of `routing="preprovisioned"`)."""
    routing = routing or ("preprovisioned" if preprovisioned else "per_user_queue")
    if routing not in ROUTING_SQS_ACTIONS:
        raise ValueError(f"no policy for routing {routing!r}; one of {sorted(ROUTING_SQS_ACTIONS)}")
    queues = [queue_arn(partition, region, account, queue_prefix)]
    table_actions = DYNAMODB_SERVER_ACTIONS + ROUTING_DYNAMODB_ACTIONS.get(routing, ())
    # Three statements whatever the strategy: the common queue actions, the strategy's own, and
    # the tables; a template that lets the deployer choose the strategy switches only what differs.
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
                "Sid": "RoutingQueues",
                "Effect": "Allow",
                "Action": sorted(ROUTING_SQS_ACTIONS[routing]),
                "Resource": queues,
            },
            {
                "Sid": "ChatTables",
                "Effect": "Allow",
                "Action": sorted(table_actions),
                "Resource": table_arns(partition, region, account, table_prefix),
            },
        ],
    }
