"""Writing in batches: DynamoDB's `BatchWriteItem` with its retries, and a group commit that
lets writes arriving together share those batches.

Two writers use them: the connection registry (`routing/registry.py`: registrations arriving
together, a reconnect storm) and the `notified` marks that end each send (`marks.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

# BatchWriteItem's limit.
BATCH_WRITE_MAX = 25
# The `notified` marks' commit cycle as the server times it (`GroupCommit(on_cycle=...)`),
# kept beside the operations' latencies (`aws/usage.py`) for the capacity model.
MARKS_COMMIT = "dynamodb:BatchWriteItem.marks"
# The same for the `instance` strategy's registrations (`routing/registry.py`).
REGISTRATIONS_COMMIT = "dynamodb:BatchWriteItem.registrations"

T = TypeVar("T")


async def batch_write(
    dynamodb: Any,
    table: str,
    requests: list[dict[str, Any]],
    attempts: int,
    on_request: Callable[[], None] | None = None,
) -> int:
    """One `BatchWriteItem` of `requests` (at most BATCH_WRITE_MAX) to `table`, then the items
    DynamoDB left unprocessed (it does under throttling) again after 50, 100, 200 ... ms, at
    most `attempts` requests in all. Returns how many items were still unprocessed."""
    pending = {table: requests}
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(0.05 * 2 ** (attempt - 1))
        try:
            resp = await dynamodb.batch_write_item(RequestItems=pending)
        finally:  # counted once answered, never before
            if on_request is not None:
                on_request()
        pending = resp.get("UnprocessedItems") or {}
        if not pending:
            return 0
    return sum(len(left) for left in pending.values())


class GroupCommit(Generic[T]):
    """Items submitted while a write is in flight (or in the same loop iteration) are written
    together in the next one, in chunks of at most `chunk` written at once; each `submit`
    returns once its own item is written, or raises what its write raised. When nothing is in
    flight, an item is written at once, without waiting for company. A caller that gives up
    (its task cancelled) does not take its item out: it is written anyway.

    `on_cycle(ms)` is told each write's cycle: from taking the pending items to seeing them
    written, the window in which the next write's items gather. It holds more than the
    request's latency: the loop's turns to start the write's task and to hear it ended."""

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[None]],
        chunk: int = BATCH_WRITE_MAX,
        on_cycle: Callable[[float], None] | None = None,
    ) -> None:
        self._write = write
        self._chunk = chunk
        self._on_cycle = on_cycle
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.writes = 0

    async def submit(self, item: T) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the submissions of this loop iteration join
        while self._pending:
            pending, self._pending = self._pending, []
            items = [item for item, _ in pending]
            chunks = [items[i : i + self._chunk] for i in range(0, len(items), self._chunk)]
            self.writes += len(chunks)
            started = time.perf_counter()
            # Every chunk runs to its end before anyone hears: a failure is then reported
            # for what was really not written, never while a sibling chunk still writes.
            results = await asyncio.gather(
                *(self._write(c) for c in chunks), return_exceptions=True
            )
            if self._on_cycle is not None:
                self._on_cycle((time.perf_counter() - started) * 1000)
            failed = next((r for r in results if isinstance(r, BaseException)), None)
            for _, done in pending:
                if done.done():
                    continue
                if failed is not None:
                    done.set_exception(failed)
                else:
                    done.set_result(None)
