"""DynamoDB capacity units from item sizes, as AWS bills on-demand requests.

The emulators report no usable consumed capacity: moto answers `ReturnConsumedCapacity` with a
constant per operation (`moto/dynamodb/responses.py`, `include_consumed_capacity(val)`), and
the server does not ask for it anyway. So units are computed from each request's items, by the
rules of the DynamoDB Developer Guide ("Read/write capacity units", "Item sizes and formats"):
- a read unit covers 4 KB strongly consistent, or twice that eventually consistent (0.5 unit);
  a Query rounds the total size of the items it returns up to 4 KB, a GetItem its one item;
  a read that finds nothing still costs the minimum (1 or 0.5);
- a write unit covers 1 KB of one item (each item of a batch rounded on its own);
- transactional reads and writes cost twice.
An item's size: attribute names plus values (strings and binaries their bytes, numbers about
one byte per two significant digits plus one, booleans and nulls 1, lists and maps 3 plus 1 per
element, sets the sum of their elements).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB's JSON (`{"S": "x"}`)."""
    (kind, v), *_ = value.items()
    if kind == "S":
        return len(str(v).encode())
    if kind == "N":
        digits = str(v).lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits.rstrip("0") or "0") / 2) + 1
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(s).encode()) for s in v)
    if kind == "NS":
        return sum(value_size({"N": n}) for n in v)
    if kind == "BS":
        return sum(len(b) for b in v)
    if kind == "L":
        return 3 + sum(1 + value_size(e) for e in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(e) for k, e in v.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes of one item in DynamoDB's JSON: its attribute names and values."""
    return sum(len(name.encode()) + value_size(v) for name, v in item.items())


def read_units(sizes: Iterable[int], consistent: bool, transactional: bool = False) -> float:
    """Units of one read returning items of these sizes (a Query's page, a GetItem's item)."""
    units = max(1, math.ceil(sum(sizes) / READ_UNIT_BYTES))
    factor = 2.0 if transactional else (1.0 if consistent else 0.5)
    return units * factor


def write_units(size: int, transactional: bool = False) -> float:
    """Units of writing one item of this size."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES)) * (2.0 if transactional else 1.0)


def request_write_units(operation: str, params: Mapping[str, Any]) -> float:
    """Write units of one request, from its parameters. An update or delete is priced by the
    key and values it sends: the item it changes is not in the request (AWS prices the larger of
    the item before and after). Every item semichat updates or deletes is well under 1 KB (an
    idempotency record, a registry entry, a conversation of a few participants), so this is
    exact for them; an assumption for items near 1 KB."""
    if operation == "PutItem":
        return write_units(item_size(params["Item"]))
    if operation in ("UpdateItem", "DeleteItem"):
        values = params.get("ExpressionAttributeValues") or {}
        return write_units(item_size(params["Key"]) + item_size(values))
    if operation == "BatchWriteItem":
        total = 0.0
        for requests in params["RequestItems"].values():
            for r in requests:
                item = r["PutRequest"]["Item"] if "PutRequest" in r else r["DeleteRequest"]["Key"]
                total += write_units(item_size(item))
        return total
    if operation == "TransactWriteItems":
        total = 0.0
        for action in params["TransactItems"]:
            (_kind, body), *_ = action.items()
            item = body.get("Item") or body.get("Key") or {}
            total += write_units(item_size(item), transactional=True)
        return total
    return 0.0


def response_read_units(
    operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any]
) -> float:
    """Read units of one answered request, from the items it returned."""
    consistent = bool(params.get("ConsistentRead", False))
    if operation == "GetItem":
        item = parsed.get("Item")
        return read_units([item_size(item)] if item else [], consistent)
    if operation in ("Query", "Scan"):
        return read_units((item_size(i) for i in parsed.get("Items", [])), consistent)
    return 0.0
