"""`semichat calibrate`'s measurement: how long each AWS call the chat makes takes against one
endpoint, written as a latency profile (`latency.py`) that `--faults latency=FILE` replays.

Every operation the server's store, routing strategies and health check call is measured, one
call at a time on an idle connection (the unloaded latency: load adds its own queueing on top,
which the replay leaves to the backend it runs on), `count` times or until its share of
`max_seconds` is spent, on scratch resources named `<prefix>calibrate-<token>` that are
deleted afterwards. Each call is timed between the same two client events the replay uses
(`request-created` to `response-received`, per attempt), so that replaying a backend's own
calibration on it adds about nothing. The first call of each operation (a new connection) is
left out. The long-poll wake-up is timed from the middle of a send (when its message arrived,
on a network as fast both ways) to the waiting poll's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from semichat.aws.clients import AwsClients, open_clients
from semichat.aws.latency import WAKE, LatencyProfile, install_latency, profile_document
from semichat.settings import Settings

# A long poll must be waiting at the backend before the message it is to wake on is sent;
# nothing tells the client when it is, so the send waits this long after the poll went out.
POLL_SETTLE_S = 0.1
WAKE_POLL_S = 2
TABLE_ACTIVE_TIMEOUT_S = 120.0


class _Recorder:
    """Times each attempt of the operation being measured (`measuring`), per operation key."""

    def __init__(self) -> None:
        self.measuring = ""
        self.samples: dict[str, list[float]] = defaultdict(list)
        self._started: dict[int, float] = {}

    def install(self, client: Any, service: str) -> None:
        """First to start and last to finish (a replay installed afterwards runs between):
        botocore calls the handlers registered first, then the others, then the last."""
        events = client.meta.events
        events.register_first(f"request-created.{service}", self._start)
        events.register_last(f"response-received.{service}", self._finish)

    def _start(self, request: Any, operation_name: str, **_: Any) -> None:
        request.context["semichat_calibrate_started"] = time.monotonic()

    def _finish(self, context: dict[str, Any], event_name: str, **_: Any) -> None:
        started = context.pop("semichat_calibrate_started", None)
        service, operation = event_name.split(".", 2)[1:]
        if started is not None and f"{service}:{operation}" == self.measuring:
            self.samples[self.measuring].append((time.monotonic() - started) * 1000)


class _Scratch:
    """The scratch table and queues, and one step (one measured call) per operation."""

    def __init__(self, clients: AwsClients, settings: Settings) -> None:
        token = uuid.uuid4().hex[:8]
        self.db, self.sqs = clients.dynamodb, clients.sqs
        self.table = f"{settings.table_prefix}calibrate-{token}"
        self.queue_name = f"{settings.queue_prefix}calibrate-{token}"
        self.queue = self.wake_queue = ""
        self.created: list[str] = []

    async def create(self) -> None:
        await self.db.create_table(
            TableName=self.table,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        self.queue = await self._create_queue(self.queue_name)
        self.wake_queue = await self._create_queue(f"{self.queue_name}-wake")
        deadline = time.monotonic() + TABLE_ACTIVE_TIMEOUT_S
        while (await self.db.describe_table(TableName=self.table))["Table"][
            "TableStatus"
        ] != "ACTIVE":
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"table {self.table} not active after {TABLE_ACTIVE_TIMEOUT_S} s"
                )
            await asyncio.sleep(1)  # AWS's own waiter polls every 20 s

    async def _create_queue(self, name: str) -> str:
        url: str = (await self.sqs.create_queue(QueueName=name))["QueueUrl"]
        self.created.append(url)
        return url

    async def delete(self) -> None:
        for url in self.created:
            with contextlib.suppress(Exception):
                await self.sqs.delete_queue(QueueUrl=url)
        with contextlib.suppress(Exception):
            await self.db.delete_table(TableName=self.table)

    def _key(self, sk: str) -> dict[str, Any]:
        return {"pk": {"S": "p"}, "sk": {"S": sk}}

    def _item(self, sk: str) -> dict[str, Any]:
        return {**self._key(sk), "text": {"S": "x" * 200}}

    def steps(self) -> dict[str, Callable[[int], Awaitable[Any]]]:
        """Each operation's measured call; calls made only to prepare one are not measured."""
        db, sqs, table, queue = self.db, self.sqs, self.table, self.queue
        return {
            "dynamodb:PutItem": lambda i: db.put_item(TableName=table, Item=self._item(f"{i:06d}")),
            "dynamodb:GetItem": lambda i: db.get_item(TableName=table, Key=self._key("000000")),
            "dynamodb:UpdateItem": lambda i: db.update_item(
                TableName=table,
                Key=self._key("000000"),
                UpdateExpression="SET n = :n",
                ExpressionAttributeValues={":n": {"N": str(i)}},
            ),
            "dynamodb:Query": lambda i: db.query(
                TableName=table,
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": "p"}},
                ScanIndexForward=False,
                Limit=50,
            ),
            "dynamodb:TransactWriteItems": lambda i: db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table,
                            "Item": self._item(f"tx{i:06d}{side}"),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                    for side in "ab"
                ]
            ),
            "dynamodb:BatchWriteItem": lambda i: db.batch_write_item(
                RequestItems={
                    table: [{"PutRequest": {"Item": self._item(f"b{i:06d}{j}")}} for j in range(5)]
                }
            ),
            "dynamodb:DeleteItem": lambda i: db.delete_item(
                TableName=table, Key=self._key(f"{i:06d}")
            ),
            "dynamodb:DescribeTable": lambda i: db.describe_table(TableName=table),
            "sqs:GetQueueUrl": lambda i: sqs.get_queue_url(QueueName=self.queue_name),
            "sqs:GetQueueAttributes": lambda i: sqs.get_queue_attributes(
                QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
            ),
            "sqs:ListQueues": lambda i: sqs.list_queues(
                QueueNamePrefix=self.queue_name, MaxResults=1
            ),
            "sqs:SendMessage": lambda i: sqs.send_message(QueueUrl=queue, MessageBody=f"m{i}"),
            # A short poll of a queue holding messages: the long polls' own time is the wake.
            "sqs:ReceiveMessage": lambda i: sqs.receive_message(
                QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=0, VisibilityTimeout=0
            ),
            "sqs:ChangeMessageVisibility": self._change_visibility,
            "sqs:DeleteMessage": self._delete_message,
            "sqs:DeleteMessageBatch": self._delete_message_batch,
            "sqs:CreateQueue": lambda i: self._create_queue(f"{self.queue_name}-q{i}"),
            "sqs:DeleteQueue": self._delete_queue,
        }

    async def _received(self, n: int) -> list[str]:
        """Receipt handles of up to `n` messages taken from the scratch queue."""
        resp = await self.sqs.receive_message(
            QueueUrl=self.queue, MaxNumberOfMessages=n, WaitTimeSeconds=1
        )
        return [m["ReceiptHandle"] for m in resp.get("Messages", [])]

    async def _change_visibility(self, i: int) -> None:
        for handle in await self._received(1):
            await self.sqs.change_message_visibility(
                QueueUrl=self.queue, ReceiptHandle=handle, VisibilityTimeout=0
            )

    async def _delete_message(self, i: int) -> None:
        await self.sqs.send_message(QueueUrl=self.queue, MessageBody=f"d{i}")
        for handle in await self._received(1):
            await self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=handle)

    async def _delete_message_batch(self, i: int) -> None:
        for j in range(3):
            await self.sqs.send_message(QueueUrl=self.queue, MessageBody=f"b{i}.{j}")
        handles = await self._received(3)
        if handles:
            await self.sqs.delete_message_batch(
                QueueUrl=self.queue,
                Entries=[{"Id": str(k), "ReceiptHandle": h} for k, h in enumerate(handles)],
            )

    async def _delete_queue(self, i: int) -> None:
        url = self.created.pop()
        if url in (self.queue, self.wake_queue):
            self.created.append(url)
            return
        await self.sqs.delete_queue(QueueUrl=url)

    async def wake(self) -> float | None:
        """Milliseconds from a message's arrival to the answer of the poll that waited for it.
        It arrived halfway through its SendMessage, on a network as fast both ways (as the
        replay has it): on a loopback that is about the send's answer, on AWS some 10 ms before."""
        poll = asyncio.ensure_future(
            self.sqs.receive_message(QueueUrl=self.wake_queue, WaitTimeSeconds=WAKE_POLL_S)
        )
        await asyncio.sleep(POLL_SETTLE_S)
        before = time.monotonic()
        await self.sqs.send_message(QueueUrl=self.wake_queue, MessageBody="wake")
        sent = (before + time.monotonic()) / 2
        resp = await poll
        answered = time.monotonic()
        messages = resp.get("Messages", [])
        for m in messages:
            await self.sqs.delete_message(
                QueueUrl=self.wake_queue, ReceiptHandle=m["ReceiptHandle"]
            )
        return max(0.0, (answered - sent) * 1000) if messages else None


async def calibrate(
    settings: Settings, count: int, max_seconds: float, replay: LatencyProfile | None = None
) -> dict[str, Any]:
    """The profile document of `settings`' endpoints: at most `count` calls of each operation,
    within about `max_seconds` in all (scratch resources' creation and deletion aside). With
    `replay`, through that profile's replay: a check that the replay gives the profile back."""
    recorder = _Recorder()
    async with open_clients(settings) as clients:
        for service, client in (("dynamodb", clients.dynamodb), ("sqs", clients.sqs)):
            recorder.install(client, service)
            if replay is not None:
                install_latency(client, service, replay)
        scratch = _Scratch(clients, settings)
        try:
            await scratch.create()
            steps = scratch.steps()
            share = max_seconds / (len(steps) + 1)
            for key, step in steps.items():
                recorder.measuring = key
                # One call more than counted: the first (a new connection) is left out.
                await _repeat(step, count + 1, share)
                del recorder.samples[key][:1]
            recorder.measuring = ""
            wakes = await _wakes(scratch, count, share)
        finally:
            await scratch.delete()
    samples = {**recorder.samples, WAKE: wakes}
    measured = {
        "backend": settings.backend,
        "endpoint": {"dynamodb": settings.dynamodb_url, "sqs": settings.sqs_url},
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "count": count,
    }
    source = f"semichat calibrate --backend {settings.backend}"
    if replay is not None:
        source += f", replaying {replay.source}"
    return profile_document(source, samples, measured)


async def _repeat(step: Callable[[int], Awaitable[Any]], count: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    for i in range(count):
        if i > 1 and time.monotonic() > deadline:
            return
        await step(i)


async def _wakes(scratch: _Scratch, count: int, seconds: float) -> list[float]:
    deadline = time.monotonic() + seconds
    found: list[float] = []
    for _ in range(count):
        if len(found) > 1 and time.monotonic() > deadline:
            break
        wake = await scratch.wake()
        if wake is not None:
            found.append(wake)
    return found
