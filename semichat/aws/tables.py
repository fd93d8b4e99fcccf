"""Provisioning as data: the DynamoDB tables semichat needs, defined once.

Everything that creates infrastructure (the embedded backend, LocalStack's init hook, the
CloudFormation template and IAM policy for real AWS) derives it from `TABLE_SPECS`, so names and
key schemas cannot drift apart.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

CONVERSATIONS = "Conversations"
MESSAGES = "Messages"
IDEMPOTENCY = "Idempotency"
USER_QUEUES = "ChatUserQueue"
CONNECTIONS = "Connections"
TABLE_ACTIVE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class TableSpec:
    logical_name: str
    hash_key: str
    range_key: str | None = None
    ttl_attribute: str | None = None

    def name(self, prefix: str) -> str:
        return f"{prefix}{self.logical_name}"

    def create_table_kwargs(self, prefix: str) -> dict[str, Any]:
        """Arguments for DynamoDB CreateTable (on-demand billing, string keys)."""
        keys = [(self.hash_key, "HASH")] + ([(self.range_key, "RANGE")] if self.range_key else [])
        return {
            "TableName": self.name(prefix),
            "KeySchema": [{"AttributeName": k, "KeyType": t} for k, t in keys],
            "AttributeDefinitions": [{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
            "BillingMode": "PAY_PER_REQUEST",
        }

    def time_to_live_kwargs(self, prefix: str) -> dict[str, Any] | None:
        """Arguments for DynamoDB UpdateTimeToLive, or None for a table without expiry."""
        if self.ttl_attribute is None:
            return None
        return {
            "TableName": self.name(prefix),
            "TimeToLiveSpecification": {"Enabled": True, "AttributeName": self.ttl_attribute},
        }


TABLE_SPECS: tuple[TableSpec, ...] = (
    TableSpec(CONVERSATIONS, hash_key="conversationId"),
    # sortKey = "<createdAt ISO>#<messageId>": lexicographic order is time order.
    TableSpec(MESSAGES, hash_key="conversationId", range_key="sortKey"),
    TableSpec(IDEMPOTENCY, hash_key="idempotencyId", ttl_attribute="expiresAt"),
    TableSpec(USER_QUEUES, hash_key="userId"),
    # Routing `instance`: which server instances (their queues) hold a stream of which user;
    # entries expire (expiresAt, epoch seconds) unless their instance refreshes them.
    TableSpec(CONNECTIONS, hash_key="userId", range_key="instanceId", ttl_attribute="expiresAt"),
)


def table_names(prefix: str) -> dict[str, str]:
    return {spec.logical_name: spec.name(prefix) for spec in TABLE_SPECS}


def tables_document(prefix: str) -> list[dict[str, Any]]:
    """The tables as AWS CLI inputs (`create-table` / `update-time-to-live --cli-input-json`):
    what `semichat provision --print tables` prints and LocalStack's init hook reads."""
    return [
        {
            "createTable": spec.create_table_kwargs(prefix),
            "timeToLive": spec.time_to_live_kwargs(prefix),
        }
        for spec in TABLE_SPECS
    ]


async def ensure_tables(dynamodb: Any, prefix: str) -> list[str]:
    """Create the tables that do not exist yet; returns the names created. Idempotent."""
    created: list[str] = []
    for spec in TABLE_SPECS:
        try:
            await dynamodb.create_table(**spec.create_table_kwargs(prefix))
            created.append(spec.name(prefix))
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":
                raise
    for spec in TABLE_SPECS:
        if spec.name(prefix) not in created:
            continue
        await _wait_active(dynamodb, spec.name(prefix))
        ttl = spec.time_to_live_kwargs(prefix)
        if ttl is not None:
            await dynamodb.update_time_to_live(**ttl)
    return created


async def _wait_active(dynamodb: Any, name: str) -> None:
    async with asyncio.timeout(TABLE_ACTIVE_TIMEOUT_S):
        while True:
            desc = await dynamodb.describe_table(TableName=name)
            if desc["Table"]["TableStatus"] == "ACTIVE":
                return
            await asyncio.sleep(0.2)
