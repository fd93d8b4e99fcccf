"""Group commit of the `notified` marks that end a send.

Every stored message ends with a write marking its idempotency record notified (a retry of a
notified send then announces nothing again). At 100 chatting users that write was one request
in nine of the server's and 9 % of its CPU (py-spy --gil), on the core that bounds the run.
Marks that arrive while a write is in flight go out together in the next `BatchWriteItem` (up
to 25 a request; `batches.GroupCommit`, as the registry's registrations): one request for
several sends, and no wait added when the server is idle (the first mark is written at once).
A send still returns only once its own mark is written, as before.

The batch puts each record whole (BatchWriteItem has no updates). That is safe because the
record is the one the send itself stored, and a retry's change to it (taking over the fan-out
lease) matters only while the record is not yet notified. A retry's own re-announcement still
marks with an update (`ChatStore.mark_notified`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from semichat.aws.batches import GroupCommit

PutRecords = Callable[[list[dict[str, Any]]], Awaitable[None]]


class NotifiedMarks:
    def __init__(self, put: PutRecords, on_cycle: Callable[[float], None] | None = None) -> None:
        self._commit: GroupCommit[dict[str, Any]] = GroupCommit(put, on_cycle=on_cycle)

    @property
    def requests(self) -> int:
        return self._commit.writes

    async def mark(self, record: dict[str, Any]) -> None:
        """Write `record` (an idempotency record) marked notified, with whatever else waits."""
        await self._commit.submit({**record, "notified": True})
