"""`semichat provision`: create the tables, and optionally users' queues and their mappings.

User queues are made by the router itself (`PerUserQueueRouter.queue_url` creates the queue and
writes the ChatUserQueue mapping on first use), so pre-provisioning cannot name or configure a
queue differently from what the server would do lazily.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .aws import open_clients
from .identity import validate_user_id
from .metrics import SqsCounters
from .provision import ensure_tables
from .routing import make_router
from .routing.per_user_queue import PerUserQueueRouter
from .settings import Settings
from .sqs import SqsQueues
from .store import ChatStore

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
            if not isinstance(router, PerUserQueueRouter):
                raise ValueError(f"routing {router.name!r} has no per-user queues to create")
            report.queues = await _create_user_queues(router, users)
    return report


async def _create_user_queues(router: PerUserQueueRouter, users: Iterable[str]) -> dict[str, str]:
    limit = asyncio.Semaphore(USER_CONCURRENCY)

    async def one(user: str) -> tuple[str, str]:
        async with limit:
            return user, await router.queue_url(user)

    return dict(await asyncio.gather(*(one(u) for u in users)))
