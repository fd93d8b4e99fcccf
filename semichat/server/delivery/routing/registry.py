"""The connection registry of the `instance` strategy: which instance queues hold a stream of
which user, in the DynamoDB table `Connections` (userId, instanceId -> queueUrl, expiresAt).

Entries expire: each instance refreshes its entries every third of `registry_ttl_seconds`
and removes a user's entry when its last stream of that user closes. A crashed instance's
entries stop being refreshed; readers ignore entries past `expiresAt` at once, and DynamoDB's
TTL deletes them later (AWS documents "typically within a few days"; moto at once). Instances
record themselves under the reserved user id `#instances` (`#` is not allowed in user ids),
which is how a live instance's janitor finds a dead one's queue to delete. That record's
deadline is `aliveUntil`, not the TTL attribute: DynamoDB must not delete it before a janitor
has deleted its queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from semichat.aws.batches import BATCH_WRITE_MAX, GroupCommit, batch_write
from semichat.aws.tables import CONNECTIONS, table_names
from semichat.server.metrics import DeliveryCounters

INSTANCES_KEY = "#instances"
TTL_ATTRIBUTE = "expiresAt"
ALIVE_ATTRIBUTE = "aliveUntil"
BATCH_RETRIES = 5
BATCH_CONCURRENCY = 4


@dataclass(frozen=True)
class Connection:
    user_id: str
    instance_id: str
    queue_url: str
    expires_at: float


class ConnectionRegistry:
    def __init__(
        self,
        dynamodb: Any,
        table_prefix: str,
        counters: DeliveryCounters,
        clock: Callable[[], float] = time.time,
        on_cycle: Callable[[float], None] | None = None,
    ) -> None:
        self._db = dynamodb
        self._table = table_names(table_prefix)[CONNECTIONS]
        self._counters = counters
        self._clock = clock
        # `on_cycle(ms)`: each registrations write's cycle (`GroupCommit`), for the metrics.
        self._registrations: GroupCommit[dict[str, Any]] = GroupCommit(
            self._write_registrations, on_cycle=on_cycle
        )

    @staticmethod
    def _item(user_id: str, instance_id: str, queue_url: str, expires_at: float) -> dict:
        deadline = ALIVE_ATTRIBUTE if user_id == INSTANCES_KEY else TTL_ATTRIBUTE
        return {
            "userId": {"S": user_id},
            "instanceId": {"S": instance_id},
            "queueUrl": {"S": queue_url},
            deadline: {"N": str(int(expires_at))},
        }

    async def register(self, user_id: str, instance_id: str, queue_url: str, ttl: float) -> None:
        """Write the user's entry; returns once it is written. Registrations that arrive
        together (a reconnect storm after a restart) share `BatchWriteItem`s: one `PutItem`
        each held 10,000 streams connecting at about 40 a second on the embedded backend
        (`benchmarks/bench_streams.py`), the backend busy with one request per stream."""
        item = self._item(user_id, instance_id, queue_url, self._clock() + ttl)
        await self._registrations.submit({"PutRequest": {"Item": item}})

    async def _write_registrations(self, requests: list[dict[str, Any]]) -> None:
        if not await self._write_chunk(requests):
            raise RuntimeError("the registry kept some registrations unprocessed")

    async def unregister(self, user_id: str, instance_id: str) -> None:
        with self._counted("registry_deletes"):
            await self._db.delete_item(
                TableName=self._table,
                Key={"userId": {"S": user_id}, "instanceId": {"S": instance_id}},
            )

    async def refresh(
        self, users: Sequence[str], instance_id: str, queue_url: str, ttl: float
    ) -> None:
        """Extend the instance's own entry and its users' entries (25 a request)."""
        expires = self._clock() + ttl
        items = [self._item(INSTANCES_KEY, instance_id, queue_url, expires)]
        items += [self._item(u, instance_id, queue_url, expires) for u in users]
        await self._batch([{"PutRequest": {"Item": i}} for i in items])

    async def remove_all(self, users: Sequence[str], instance_id: str) -> None:
        """At clean shutdown: the instance's entries and its own record."""
        keys = [
            {"userId": {"S": u}, "instanceId": {"S": instance_id}} for u in [*users, INSTANCES_KEY]
        ]
        await self._batch([{"DeleteRequest": {"Key": k}} for k in keys])

    async def _batch(self, requests: list[dict[str, Any]]) -> None:
        """A few chunks at a time: one after another, the refresh of 10,000 users (400
        requests) outlasted the entries' TTL on a busy embedded backend, and sends then found
        connected users unregistered (`bench_streams`, `not_connected`)."""
        gate = asyncio.Semaphore(BATCH_CONCURRENCY)

        async def write(chunk: list[dict[str, Any]]) -> None:
            async with gate:
                await self._write_chunk(chunk)

        await asyncio.gather(
            *(
                write(requests[start : start + BATCH_WRITE_MAX])
                for start in range(0, len(requests), BATCH_WRITE_MAX)
            )
        )

    async def _write_chunk(self, requests: list[dict[str, Any]]) -> bool:
        """One `BatchWriteItem` (at most 25 requests) and its retries; False if some of it
        was still unprocessed after them."""
        left = await batch_write(
            self._db, self._table, requests, BATCH_RETRIES, self._count_registry_write
        )
        return left == 0

    def _count_registry_write(self) -> None:
        self._counters.registry_writes += 1

    @contextmanager
    def _counted(self, counter: str) -> Iterator[None]:
        """Count a request once it is answered or failed, never before it is."""
        try:
            yield
        finally:
            setattr(self._counters, counter, getattr(self._counters, counter) + 1)

    async def lookup(self, users: Sequence[str]) -> list[Connection]:
        """Live entries of these users (strongly consistent: a stream that registered before
        this read is seen)."""
        found = await asyncio.gather(*(self._query(u) for u in users))
        return [c for conns in found for c in conns]

    async def _query(self, user_id: str) -> list[Connection]:
        with self._counted("registry_reads"):
            resp = await self._db.query(
                TableName=self._table,
                KeyConditionExpression="userId = :u",
                ExpressionAttributeValues={":u": {"S": user_id}},
                ConsistentRead=True,
            )
        now = self._clock()
        conns = [
            Connection(
                user_id=i["userId"]["S"],
                instance_id=i["instanceId"]["S"],
                queue_url=i["queueUrl"]["S"],
                expires_at=float(i[TTL_ATTRIBUTE]["N"]),
            )
            for i in resp.get("Items", [])
        ]
        return [c for c in conns if c.expires_at > now]

    async def expired_instances(self) -> list[Connection]:
        """Instances that stopped refreshing their record (crashed, or cut off)."""
        with self._counted("registry_reads"):
            resp = await self._db.query(
                TableName=self._table,
                KeyConditionExpression="userId = :u",
                ExpressionAttributeValues={":u": {"S": INSTANCES_KEY}},
                ConsistentRead=True,
            )
        now = self._clock()
        return [
            Connection(INSTANCES_KEY, i["instanceId"]["S"], i["queueUrl"]["S"], float(e))
            for i in resp.get("Items", [])
            if (e := i[ALIVE_ATTRIBUTE]["N"]) and float(e) <= now
        ]

    async def forget_instance(self, instance: Connection) -> bool:
        """Delete a dead instance's record unless it came back to life meanwhile."""
        try:
            with self._counted("registry_deletes"):
                await self._db.delete_item(
                    TableName=self._table,
                    Key={"userId": {"S": INSTANCES_KEY}, "instanceId": {"S": instance.instance_id}},
                    ConditionExpression=f"{ALIVE_ATTRIBUTE} <= :e",
                    ExpressionAttributeValues={":e": {"N": str(int(instance.expires_at))}},
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
