"""DynamoDB's conditional writes made atomic in moto, for the embedded backend.

DynamoDB applies a conditional write atomically: of two concurrent writes whose condition only
one can meet, exactly one succeeds. moto reads the item, checks the condition and writes without
a lock, so two concurrent requests (moto serves each on its own thread) can both pass: measured
here, 6 of 100 rounds of ten concurrent `claim_fanout` calls from two clients had two winners.
The chat's idempotency and fan-out lease rest on that guarantee, so the embedded backend locks
the items a write touches while it runs (a transaction: all of its items, taken in one order).

Per item, as DynamoDB isolates: one lock for every write made each send wait for every other
send's writes, and a write holding it shares the GIL with every request thread, so at 100
chatting users a send's transaction and its `notified` update waited 0.8 s each (median, timed
in `semichat serve`) behind other users' writes. Reads stay concurrent.
"""

from __future__ import annotations

import functools
import inspect
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from semichat.emulator.patches.core import key_of, touched_keys

# Writes that may carry a condition. `transact_write_items` calls the others: hence re-entrant.
CONDITIONAL_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")

ItemKey = tuple[str, str]

_guard = threading.Lock()
# Per item being written: its lock and how many calls hold or wait for it (dropped at zero,
# so the table does not grow with every item ever written).
_held: dict[ItemKey, list[Any]] = {}


@contextmanager
def holding(keys: list[ItemKey]) -> Iterator[None]:
    """Hold the locks of `keys`, taken in sorted order so that two transactions sharing items
    cannot each hold what the other waits for; re-entrant, so a transaction's own writes pass."""
    entries = []
    with _guard:
        for key in sorted(set(keys)):
            entry = _held.setdefault(key, [threading.RLock(), 0])
            entry[1] += 1
            entries.append((key, entry))
    acquired = []
    try:
        for _, entry in entries:
            entry[0].acquire()
            acquired.append(entry[0])
        yield
    finally:
        for lock in reversed(acquired):
            lock.release()
        with _guard:
            for key, entry in entries:
                entry[1] -= 1
                if entry[1] == 0:
                    del _held[key]


def _item_key(table_name: str, key: dict[str, Any] | None) -> ItemKey:
    return table_name, json.dumps(key, sort_keys=True, default=str)


def _keys(backend: Any, name: str, call: inspect.BoundArguments) -> list[ItemKey]:
    args = call.arguments
    if name == "transact_write_items":
        return [_item_key(t, k) for t, k in touched_keys(backend, args["transact_items"])]
    table_name = args["table_name"]
    if name != "put_item":
        return [_item_key(table_name, args["key"])]
    table = backend.tables.get(table_name)
    if table is None:
        return [_item_key(table_name, None)]  # moto refuses it; nothing to keep apart
    return [_item_key(table_name, key_of(table, args["item_attrs"]))]


def _serialised(name: str, write: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(write)

    @functools.wraps(write)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with holding(_keys(self, name, signature.bind(self, *args, **kwargs))):
            return write(self, *args, **kwargs)

    locked.__semichat_atomic__ = True  # type: ignore[attr-defined]
    return locked


def make_conditional_writes_atomic() -> None:
    """Patch moto's DynamoDB backend in this process; calling it again changes nothing."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in CONDITIONAL_WRITES:
        write = getattr(DynamoDBBackend, name)
        if not getattr(write, "__semichat_atomic__", False):
            setattr(DynamoDBBackend, name, _serialised(name, write))
