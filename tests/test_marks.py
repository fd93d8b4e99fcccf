"""`NotifiedMarks`: the `notified` marks of sends finishing together share one write."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from semichat.aws.batches import BATCH_WRITE_MAX
from semichat.server.chat.marks import NotifiedMarks


class _Table:
    """A put that holds each write until the test lets it go, and records what it wrote."""

    def __init__(self) -> None:
        self.writes: list[list[str]] = []
        self.started = asyncio.Event()
        self.go = asyncio.Event()
        self.fail: Exception | None = None
        self.wrote = asyncio.Condition()
        self.start_ms = 0.0  # when the first write reached the table (perf_counter, ms)

    async def put(self, records: list[dict[str, Any]]) -> None:
        assert all(r["notified"] is True for r in records)
        async with self.wrote:
            self.writes.append([r["idempotencyId"] for r in records])
            self.wrote.notify_all()
        if not self.started.is_set():
            self.start_ms = time.perf_counter() * 1000
        self.started.set()
        await self.go.wait()
        if self.fail is not None:
            raise self.fail


def _record(key: str) -> dict[str, Any]:
    return {"idempotencyId": key, "messageId": f"m-{key}", "notified": False, "expiresAt": 1}


async def test_the_first_mark_is_written_at_once_and_those_arriving_meanwhile_together() -> None:
    table = _Table()
    marks = NotifiedMarks(table.put)
    first = asyncio.create_task(marks.mark(_record("a")))
    await table.started.wait()
    assert table.writes == [["a"]]  # not held back to wait for company
    later = [asyncio.create_task(marks.mark(_record(k))) for k in ("b", "c", "d")]
    await asyncio.sleep(0)  # they queue behind the write in flight
    table.go.set()
    await asyncio.gather(first, *later)
    assert table.writes == [["a"], ["b", "c", "d"]] and marks.requests == 2
    # Idle again: the next mark is written at once, alone.
    await marks.mark(_record("e"))
    assert table.writes[-1] == ["e"]


async def test_a_batch_holds_at_most_what_one_batch_write_takes() -> None:
    table = _Table()
    table.go.set()
    marks = NotifiedMarks(table.put)
    await asyncio.gather(*(marks.mark(_record(f"k{i}")) for i in range(BATCH_WRITE_MAX * 2 + 1)))
    assert sorted(len(w) for w in table.writes) == [1, BATCH_WRITE_MAX, BATCH_WRITE_MAX]


async def test_a_failed_write_fails_every_mark_in_it_and_the_next_write_starts_afresh() -> None:
    table = _Table()
    marks = NotifiedMarks(table.put)
    table.fail = RuntimeError("throttled")
    waiting = [asyncio.create_task(marks.mark(_record(k))) for k in ("a", "b")]
    await table.started.wait()
    table.go.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    table.fail = None
    await marks.mark(_record("c"))
    assert table.writes[-1] == ["c"]


async def test_a_mark_whose_send_was_cancelled_is_still_written() -> None:
    table = _Table()
    marks = NotifiedMarks(table.put)
    blocker = asyncio.create_task(marks.mark(_record("a")))
    await table.started.wait()
    left = asyncio.create_task(marks.mark(_record("gone")))
    await asyncio.sleep(0)
    left.cancel()  # the client went away; aiohttp cancels its handler
    with pytest.raises(asyncio.CancelledError):
        await left
    table.go.set()
    await blocker
    async with table.wrote:
        await table.wrote.wait_for(lambda: len(table.writes) == 2)
    assert table.writes == [["a"], ["gone"]]


async def test_records_dynamodb_keeps_leaving_unprocessed_end_in_a_throttling_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`ChatStore.put_records` sends unprocessed items again, then gives up as throttled (a
    503 the client may retry), never as an unhandled error (a 500)."""
    from botocore.exceptions import ClientError

    from semichat.aws import batches
    from semichat.server.chat import store as store_module
    from semichat.server.errors import backend_refusal

    calls: list[int] = []

    class _Throttling:
        async def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            calls.append(sum(len(v) for v in RequestItems.values()))
            # The first item of each request is never processed.
            first_table, requests = next(iter(RequestItems.items()))
            return {"UnprocessedItems": {first_table: requests[:1]}}

    async def no_wait(_: float) -> None:
        pass

    chat_store = store_module.ChatStore(_Throttling(), "t-")
    monkeypatch.setattr(batches.asyncio, "sleep", no_wait)  # the backoff between attempts
    with pytest.raises(ClientError) as refused:
        await chat_store.put_records([_record("a"), _record("b")])
    assert calls == [2] + [1] * (store_module.BATCH_WRITE_ATTEMPTS - 1)
    assert backend_refusal(refused.value) is not None


async def test_each_writes_cycle_is_timed_from_taking_the_marks_to_hearing_them_written() -> None:
    """The window in which the next write's marks gather: it holds the whole write, however
    long the table holds it, and the loop's turns around it."""
    table = _Table()
    cycles: list[float] = []
    marks = NotifiedMarks(table.put, on_cycle=cycles.append)
    first = asyncio.create_task(marks.mark(_record("a")))
    await table.started.wait()
    await asyncio.sleep(0.02)  # the table holds the write a while
    later = asyncio.create_task(marks.mark(_record("b")))
    await asyncio.sleep(0)
    let_go_ms = time.perf_counter() * 1000
    table.go.set()
    await asyncio.gather(first, later)
    assert marks.requests == 2 and len(cycles) == 2
    # The first cycle began before the write reached the table and ended after it was let go.
    assert cycles[0] >= let_go_ms - table.start_ms >= 20.0
