"""A table query that reads one page by key, as DynamoDB does, instead of the whole partition.

moto answers every Query by listing the partition, sorting it with Python-level comparisons of
`DynamoType`s and walking it to the exclusive start key: a history page costs O(n log n) in the
conversation's length (3.9 / 6.4 / 17.9 ms at 100 / 1,000 / 3,000 messages, measured here). A
30-minute soak's conversations grow past that, so its view p99 grew eightfold from the emulator
alone, where DynamoDB's cost of a page does not depend on what precedes it.

The plain page (a table's hash key, no sort-key condition, no filter, no projection: what
`store.history` asks) is answered here from the partition's keys, sorted by their plain values
(C-level string or Decimal comparisons) and cut at the start key by bisection. Every other query
goes to moto's own, scoped to the partition it asks for. The answer is moto's to the item: the
same items, `ScannedCount` and `LastEvaluatedKey` (`tests/test_embedded_moto.py` compares both
on generated tables).
"""

from __future__ import annotations

import copy
import functools
import inspect
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from moto.dynamodb.comparisons import OpDefault
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table

# The partition the query running in this thread asks for (moto serves each request on a
# thread of its own): `all_items` lists only that partition while it is set.
_partition = threading.local()

# Sort-key types whose order is their plain value's (binary keys keep moto's path).
_PLAIN: dict[str, Callable[[str], Any]] = {"S": str, "N": Decimal}


def _is_plain_page(table: Table, hash_key: Any, args: dict[str, Any]) -> bool:
    return (
        hash_key is not None
        and table.range_key_attr is not None
        and table.range_key_type in _PLAIN
        and args.get("index_name") is None
        and not args.get("range_comparison")
        and not args.get("range_key_conditions")
        and not args.get("filter_kwargs")
        # moto turns an absent FilterExpression into an `OpDefault`, which keeps every item.
        and type(args.get("filter_expression")) in (type(None), OpDefault)
        and not args.get("projection_expressions")
    )


def page(
    table: Table,
    hash_key: DynamoType,
    limit: int | None,
    exclusive_start_key: dict[str, Any] | None,
    forward: bool,
) -> tuple[list[Any], int, dict[str, Any] | None]:
    """One page of a partition in sort-key order, as `Table.query` answers it: up to `limit`
    items (and under DynamoDB's 1 MB) after the start key, and the key to go on from when an
    item remains beyond the page."""
    bucket = table.items.get(hash_key)  # .get: items is a defaultdict
    if not bucket:
        return [], 0, None
    plain = _PLAIN[table.range_key_type or "S"]
    keys = sorted(bucket, key=lambda k: plain(k.value))
    values = [plain(k.value) for k in keys]
    if forward:
        start = 0
        if exclusive_start_key is not None:
            start_value = DynamoType(exclusive_start_key[table.range_key_attr]).value
            start = bisect_right(values, plain(start_value))
        order = keys[start:]
    else:
        end = len(keys)
        if exclusive_start_key is not None:
            start_value = DynamoType(exclusive_start_key[table.range_key_attr]).value
            end = bisect_left(values, plain(start_value))
        order = keys[:end][::-1]
    results: list[Any] = []
    size = 0
    last_key = None
    for key in order:
        item = bucket[key]
        if len(results) == limit or size + item.size() > RESULT_SIZE_LIMIT:
            last_key = table._get_last_evaluated_key(results[-1], None)
            break
        results.append(item)
        size += item.size()
    return copy.deepcopy(results), len(results), last_key


def apply() -> None:
    """Patch `Table.query` (idempotent)."""
    query, all_items = Table.query, Table.all_items
    if getattr(query, "_semichat_patched", False):
        return
    signature = inspect.signature(query)

    @functools.wraps(query)
    def paged_query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, hash_key, *args, **kwargs).arguments
        if _is_plain_page(self, hash_key, bound):
            return page(
                self,
                hash_key,
                bound.get("limit"),
                bound.get("exclusive_start_key"),
                bound.get("scan_index_forward", True) is not False,
            )
        if bound.get("index_name") is not None or hash_key is None:
            return query(self, hash_key, *args, **kwargs)
        _partition.scope = (self, hash_key)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            _partition.scope = None

    @functools.wraps(all_items)
    def partition_items(self: Table) -> list[Any]:
        scope = getattr(_partition, "scope", None)
        if scope is None or scope[0] is not self:
            return all_items(self)
        bucket = self.items.get(scope[1])
        if bucket is None:
            return []
        if not self.range_key_attr:
            return [bucket]
        return sorted(bucket.values(), key=lambda item: item.range_key)

    paged_query._semichat_patched = True  # type: ignore[attr-defined]
    Table.query = paged_query  # type: ignore[method-assign]
    Table.all_items = partition_items  # type: ignore[method-assign]
