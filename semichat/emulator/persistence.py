"""`--data-dir`: the embedded backend's tables and queues kept across restarts of `serve`.

moto keeps everything in memory and offers no persistence of its own: its server has a reset
endpoint (`/moto-api/reset`) but no snapshot, and its backends hold locks, which do not pickle.
So the backend process saves its state itself, through the AWS API against its own endpoint:

- every table (its key schema, indexes and items, from `DescribeTable` and `Scan`) and every
  queue (its name and settable attributes, from `ListQueues` and `GetQueueAttributes`, and the
  bodies of the messages it holds, visible or in flight, read from moto's queue objects
  (`patches/held_messages.py`: the API cannot read them without receiving them);
- into one file, `state.json`, written whole (a temporary file, then a rename), every
  `SAVE_EVERY_S` when anything changed, and at shutdown (SIGTERM, SIGINT, or the parent gone);
- loaded at start, before the endpoint is announced, into tables created as they were.

Tables and queues are one snapshot, so a restart never mixes a new empty table with old queue
URLs, nor the reverse. Queue URLs that the items hold (the user-to-queue mappings, the instance
registry) name the old endpoint, whose port changes from one start to the next: on load they
are rewritten to the new endpoint. Messages come back visible (an in-flight one is delivered
again: SQS is at least once anyway). What changed after the last save is lost if the backend
process itself is killed outright (SIGKILL of the backend, not of `serve`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from semichat.aws.clients import open_clients
from semichat.emulator.patches.held_messages import held_messages
from semichat.settings import Settings

log = logging.getLogger("semichat.backend")

STATE_FILE = "state.json"
FORMAT = 1
SAVE_EVERY_S = 10.0
# Queue attributes that CreateQueue accepts (the rest are counters and timestamps).
QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
)
TABLE_FIELDS = ("KeySchema", "AttributeDefinitions")
BATCH = 25  # BatchWriteItem's limit


async def snapshot(settings: Settings) -> dict[str, Any]:
    """The backend's tables and queues, as `state.json` holds them."""
    async with open_clients(settings) as clients:
        tables = [await _table(clients.dynamodb, name) for name in await _table_names(clients)]
        queues = [await _queue(clients.sqs, url) for url in await _queue_urls(clients.sqs)]
    # Queue URLs name the endpoint that served them: restore() moves them to its own.
    return {"format": FORMAT, "endpoint": settings.sqs_url, "tables": tables, "queues": queues}


async def restore(settings: Settings, state: dict[str, Any]) -> tuple[int, int]:
    """Load a snapshot into a fresh backend; returns (items, queues) restored."""
    old, new = str(state.get("endpoint") or ""), str(settings.sqs_url)
    items = 0
    async with open_clients(settings) as clients:
        existing = set(await _table_names(clients))
        for table in state["tables"]:
            if table["TableName"] not in existing:
                await _create_table(clients.dynamodb, table)
            rows = [_rewrite(item, old, new) for item in table["Items"]]
            for start in range(0, len(rows), BATCH):
                requests = [{"PutRequest": {"Item": r}} for r in rows[start : start + BATCH]]
                await _write_all(clients.dynamodb, {table["TableName"]: requests})
            items += len(rows)
        for queue in state["queues"]:
            url = (
                await clients.sqs.create_queue(
                    QueueName=queue["name"], Attributes=queue["attributes"]
                )
            )["QueueUrl"]
            for message in queue["messages"]:
                await clients.sqs.send_message(QueueUrl=url, **message)
    return items, len(state["queues"])


def load_data(settings: Settings, data_dir: Path) -> dict[str, int]:
    """At start: what `data_dir` holds, loaded into the fresh backend (nothing if empty)."""
    state = read_state(data_dir)
    if state is None:
        return {"items": 0, "queues": 0}
    items, queues = asyncio.run(restore(settings, state))
    return {"items": items, "queues": queues}


def keep_saving(settings: Settings, data_dir: Path, stop: threading.Event) -> None:
    """Save every SAVE_EVERY_S while anything changed, in a thread, and once more at `stop`
    (this call then returns): the backend's state survives a restart of `serve`."""

    def save(last: str) -> str:
        try:
            return write_state(data_dir, asyncio.run(snapshot(settings)), last)
        except Exception as exc:  # a failed save must not end the backend; the next one retries
            log.warning("could not save the backend's data to %s: %s", data_dir, exc)
            return last

    def loop() -> None:
        last = ""
        while not stop.wait(SAVE_EVERY_S):
            last = save(last)

    saver = threading.Thread(target=loop, daemon=True, name="data-dir saver")
    saver.start()
    stop.wait()
    saver.join(SAVE_EVERY_S)
    save("")


def read_state(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / STATE_FILE
    if not path.is_file():
        return None
    state = json.loads(path.read_text(), object_hook=_decode)
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: format {state.get('format')!r}, expected {FORMAT}")
    return dict(state)


def write_state(data_dir: Path, state: dict[str, Any], last_digest: str = "") -> str:
    """Write `state` whole unless it is what was last written; returns its digest."""
    text = json.dumps(state, default=_encode, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()
    if digest == last_digest:
        return digest
    data_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".state-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, data_dir / STATE_FILE)
    return digest


async def _table_names(clients: Any) -> list[str]:
    names: list[str] = []
    async for page in clients.dynamodb.get_paginator("list_tables").paginate():
        names += page["TableNames"]
    return names


async def _table(dynamodb: Any, name: str) -> dict[str, Any]:
    desc = (await dynamodb.describe_table(TableName=name))["Table"]
    table = {"TableName": name, **{k: desc[k] for k in TABLE_FIELDS}}
    indexes = [
        {k: index[k] for k in ("IndexName", "KeySchema", "Projection")}
        for index in desc.get("GlobalSecondaryIndexes", [])
    ]
    if indexes:
        table["GlobalSecondaryIndexes"] = indexes
    items: list[dict[str, Any]] = []
    async for page in dynamodb.get_paginator("scan").paginate(TableName=name):
        items += page["Items"]
    # Sorted, so that an unchanged table gives an unchanged file (no rewrite).
    table["Items"] = sorted(items, key=lambda i: json.dumps(i, default=_encode, sort_keys=True))
    return table


async def _create_table(dynamodb: Any, table: dict[str, Any]) -> None:
    spec = {k: v for k, v in table.items() if k != "Items"}
    await dynamodb.create_table(BillingMode="PAY_PER_REQUEST", **spec)


async def _write_all(dynamodb: Any, requests: dict[str, Any]) -> None:
    while requests:
        requests = (await dynamodb.batch_write_item(RequestItems=requests)).get(
            "UnprocessedItems"
        ) or {}


async def _queue_urls(sqs: Any) -> list[str]:
    urls: list[str] = []
    async for page in sqs.get_paginator("list_queues").paginate():
        urls += page.get("QueueUrls", [])
    return sorted(urls)


async def _queue(sqs: Any, url: str) -> dict[str, Any]:
    attrs = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]))["Attributes"]
    name = url.rsplit("/", 1)[-1]
    return {
        "name": name,
        "attributes": {k: v for k, v in attrs.items() if k in QUEUE_ATTRIBUTES},
        "messages": held_messages(name),
    }


def _rewrite(value: Any, old: str, new: str) -> Any:
    """`value` with strings that start with the old endpoint moved to the new one."""
    if not old or old == new:
        return value
    if isinstance(value, str) and value.startswith(old + "/"):
        return new + value[len(old) :]
    if isinstance(value, dict):
        return {k: _rewrite(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, old, new) for v in value]
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"$b64": base64.b64encode(value).decode()}
    raise TypeError(f"cannot save a {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if set(obj) == {"$b64"}:
        return base64.b64decode(obj["$b64"])
    return obj
