"""What the server reports of its backend use per operation (`/metrics` `backend`): requests,
DynamoDB units from item sizes and read consistency, and latency buckets."""

from __future__ import annotations

from typing import Any

from semichat.aws.batches import MARKS_COMMIT
from tests.test_api import history, send

Client = Any


async def test_metrics_count_requests_units_and_latency_per_operation(client: Client) -> None:
    before = (await (await client.get("/metrics")).json())["backend"]
    await send(client, "alice", "support-demo", "x" * 2500, "u-1")
    await send(client, "alice", "support-demo", "y" * 2500, "u-2")
    resp = await history(client, "alice", "support-demo", limit=10)
    assert resp.status == 200
    after = (await (await client.get("/metrics")).json())["backend"]

    def delta(section: str, key: str) -> float:
        return float(after[section].get(key, 0) - before[section].get(key, 0))

    assert delta("requests", "dynamodb:TransactWriteItems") == 2
    # Each transaction writes a 2.7 KB message (3 units) and its record (1), twice.
    assert delta("write_units", "dynamodb:TransactWriteItems") == 2 * (3 + 1) * 2
    # The page holds both messages, over 4 KB, read strongly consistent: 2 units.
    assert delta("read_units", "dynamodb:Query") == 2
    assert delta("requests", "sqs:SendMessage") == 4  # alice and support, per message
    assert delta("billed", "sqs:SendMessage") == 4
    assert sum(after["latency_ms"]["dynamodb:Query"].values()) >= 1
    # Each send's `notified` mark: its group commit's cycle is timed, and is not a request.
    cycles = after["latency_ms"][MARKS_COMMIT]
    assert sum(cycles.values()) - sum(before["latency_ms"].get(MARKS_COMMIT, {}).values()) == 2
    assert MARKS_COMMIT not in after["requests"]
    assert isinstance((await (await client.get("/metrics")).json())["cpu_s"], float)
