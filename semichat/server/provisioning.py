"""`semichat provision`: create the tables, and optionally users' queues and their mappings.

Users' queues are made by the routing strategy itself (`NotificationRouter.provision_users`, the
same code as its first use), so pre-provisioning cannot name or configure a queue differently
from what the server would do lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from semichat.aws.clients import open_clients
from semichat.aws.tables import ensure_tables
from semichat.server.chat.store import ChatStore
from semichat.server.delivery.routing import make_router
from semichat.server.delivery.sqs import SqsQueues
from semichat.server.identity import validate_user_id
from semichat.server.metrics import SqsCounters
from semichat.settings import Settings

# Enough to go fast, few enough to stay far from SQS's CreateQueue throttling.
USER_CONCURRENCY = 16


@dataclass
class ProvisionReport:
    tables_created: list[str] = field(default_factory=list)
    queues: dict[str, str] = field(default_factory=dict)


def parse_users(csv: str | None, users_file: Path | None) -> list[str]:
    """Users from `--users a,b,c` and/or `--users-file` (one per line, `#` comments), in order,
    without duplicates."""
    users: list[str] = []
    if csv:
        users += [u.strip() for u in csv.split(",")]
    if users_file is not None:
        for line in users_file.read_text().splitlines():
            users.append(line.split("#", 1)[0].strip())
    return list(dict.fromkeys(u for u in users if u))


async def provision(settings: Settings, users: Sequence[str] = ()) -> ProvisionReport:
    for user in users:
        validate_user_id(user)
    report = ProvisionReport()
    async with open_clients(settings) as clients:
        report.tables_created = await ensure_tables(clients.dynamodb, settings.table_prefix)
        if users:
            store = ChatStore(clients.dynamodb, settings.table_prefix)
            router = make_router(settings, SqsQueues(clients.sqs, SqsCounters()), store)
            report.queues = await router.provision_users(users, USER_CONCURRENCY)
    return report


async def provision_report(settings: Settings, users: Sequence[str]) -> dict[str, object]:
    """What `semichat provision` prints: the endpoints used and what was created."""
    from semichat.backends import with_backend

    async with with_backend(settings) as resolved:
        report = await provision(resolved, users)
    return {
        "dynamodb": resolved.dynamodb_url,
        "sqs": resolved.sqs_url,
        "tablesCreated": report.tables_created,
        "queues": report.queues,
    }
