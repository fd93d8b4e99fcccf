"""DynamoDB's faults and documented behaviours, at the wire (see `sqs.py` for the seam).

- `dynamodb_throttle=P`: a data-plane attempt is refused with
  `ProvisionedThroughputExceededException`, which botocore retries (a throttling code).
- `dynamodb_capacity=N`: each table has a token bucket of N units a second, holding at most one
  second's worth. A unit is one item read or written by a request (TransactWriteItems counts
  each item twice, as AWS bills transactional writes; a Query counts one). An attempt finding
  too few tokens is refused with `ProvisionedThroughputExceededException`. AWS keeps up to
  300 s of unused capacity as burst (DynamoDB Developer Guide, burst capacity); one second
  here is a stress value, so that a short run meets the limit.
- `dynamodb_conflict=P`: a TransactWriteItems is cancelled with `TransactionCanceledException`
  (reason `TransactionConflict`), as when another transaction holds one of its items. botocore
  does not retry it: the app sees it.
- `stale_read=S`: a GetItem without `ConsistentRead`, of an item this process wrote less than
  S s ago, answers as if the write had not landed yet (no item). This models a missed new item,
  not an older version of an updated one. semichat's own reads are all strongly consistent, so
  in semichat it never strikes; it is here for code that reads eventually.
"""

from __future__ import annotations

import time
from typing import Any

from aiobotocore.awsrequest import AioAWSResponse

from semichat.aws.wire.decisions import Decisions, operation, request_params
from semichat.aws.wire.responses import error_response, json_response

THROTTLED_MESSAGE = (
    "The level of configured provisioned throughput for the table was exceeded. Consider "
    "increasing your provisioning level with the UpdateTable API."
)
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
READS = ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems")


def capacity_units(op: str, params: dict[str, Any]) -> dict[str, int]:
    """The units one request takes from each table's bucket."""
    if op == "TransactWriteItems":
        units: dict[str, int] = {}
        for item in params.get("TransactItems", []):
            for action in item.values():
                table = str(action.get("TableName", ""))
                units[table] = units.get(table, 0) + 2
        return units
    if op in ("BatchWriteItem", "BatchGetItem"):
        return {
            table: max(1, len(entries) if isinstance(entries, list) else len(entries["Keys"]))
            for table, entries in params.get("RequestItems", {}).items()
        }
    return {str(params.get("TableName", "")): 1}


class TokenBucket:
    def __init__(self, rate: float, clock: Any = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._tokens = rate
        self._at = clock()

    def take(self, units: int) -> bool:
        now = self._clock()
        self._tokens = min(self.rate, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < units:
            return False
        self._tokens -= units
        return True


class DynamoWire:
    def __init__(self, client: Any, nemesis: Decisions, clock: Any = time.monotonic) -> None:
        self._client = client
        self._nemesis = nemesis
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        # Per table: (when, item) of the writes this process made, newest last.
        self._writes: dict[str, list[tuple[float, dict[str, Any]]]] = {}

    def install(self) -> None:
        self._client.meta.events.register("before-send.dynamodb", self.before_send)

    async def before_send(self, request: Any, event_name: str, **_: Any) -> AioAWSResponse | None:
        op = operation(event_name)
        if op not in WRITES and op not in READS:
            return None  # the control plane (tables) is not faulted: start-up needs it
        params = request_params(request)
        if self._nemesis.strikes("dynamodb_throttle") or self._over_capacity(op, params):
            return error_response(
                request.url, "dynamodb", "ProvisionedThroughputExceededException", 400,
                THROTTLED_MESSAGE,
            )  # fmt: skip
        if op == "TransactWriteItems" and self._nemesis.strikes("dynamodb_conflict"):
            reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing"}]
            reasons += [{"Code": "None"}] * (len(params.get("TransactItems", [])) - 1)
            return error_response(
                request.url, "dynamodb", "TransactionCanceledException", 400,
                "Transaction cancelled, please refer cancellation reasons for specific reasons "
                f"[{', '.join(r['Code'] for r in reasons)}]",
                CancellationReasons=reasons,
            )  # fmt: skip
        return self._stale(op, params, request.url)

    def _over_capacity(self, op: str, params: dict[str, Any]) -> bool:
        rate = self._nemesis.value("dynamodb_capacity")
        if not rate:
            return False
        for table, units in capacity_units(op, params).items():
            bucket = self._buckets.setdefault(table, TokenBucket(rate, self._clock))
            if not bucket.take(min(units, int(rate) or 1)):
                self._nemesis.count("dynamodb_capacity")
                return True
        return False

    def _stale(self, op: str, params: dict[str, Any], url: str) -> AioAWSResponse | None:
        lag = self._nemesis.value("stale_read")
        if not lag:
            return None
        now = self._clock()
        if op == "PutItem":
            writes = self._writes.setdefault(str(params.get("TableName", "")), [])
            writes.append((now, params.get("Item", {})))
            while writes and writes[0][0] < now - lag:
                writes.pop(0)
        elif op == "GetItem" and not params.get("ConsistentRead"):
            key = params.get("Key", {})
            for when, item in self._writes.get(str(params.get("TableName", "")), []):
                if when >= now - lag and all(item.get(k) == v for k, v in key.items()):
                    self._nemesis.count("stale_read")
                    return json_response(url, 200, {})
        return None
