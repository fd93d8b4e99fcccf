"""What the embedded backend changes in moto, each with the measurement that justified it.

- TransactWriteItems: moto deep-copies every table a transaction touches before it starts, to
  roll back on failure. Under concurrent sends the copy was 7.5 % of the backend's time
  (py-spy of `semichat backend` during `benchmarks/bench_streams.py`, 10 sends a second), and
  a write landing during the copy broke it ("dictionary changed size during iteration", a 500
  the client retried: 4 to 9 a run). Here a transaction copies the items it touches only, and
  a cancelled one restores those items alone. That is also what DynamoDB does: moto's
  whole-table restore erased what other requests wrote meanwhile (see README, Faults).
- Query on a table's own key: moto lists and sorts every item of the table, then keeps the
  partition asked for, so each history read and each registry look-up cost as much as the
  table is large (10,000 registry entries; thousands of messages in a chat run). DynamoDB
  reads the one partition; here too. With 10,000 streams held (`instance`), Query was 70 % of
  the backend's time (py-spy, `bench_streams`), all of it listing and sorting the table.
- ReceiveMessage: for each message it considers, moto checks retention by computing all the
  queue's attributes, counting every message of the queue (visible, delayed, in flight) each
  time: a receive cost the square of the backlog. With 100 chatting users over one instance
  queue, that was 23 % of the backend's time (py-spy, `semichat simulate --scenario chat
  --users 100 --routing instance`), and the backlog grew until notifications were lost. Here
  the check reads the retention period alone.
- Model instances: moto appends every object of a model class it ever creates (each stored
  item, each copy of one in a query's answer, each SQS message and each copy of it a receive
  returns) to a class-level list, for its server's dashboard (`/moto-api/data.json`) alone. So
  nothing moto answers with is ever freed: a 9-minute soak (`benchmarks/soak.py`) grew the SQS
  backend's traced heap by a message and a copy per notification, and the DynamoDB backend's
  by 51 copied items per history read (`Item.instances_tracked`, found by tracemalloc
  snapshots a minute apart). Here new instances are not listed; the dashboard, which nothing
  here reads, shows none.
- Response serialisation: for every value of every item, moto's `AttributePicker` builds six
  alias providers and tries each alias in turn before the key itself. A history read (21
  items) cost 34 ms of the backend's CPU, 26 % of it picking attributes (py-spy of `semichat
  backend` under `benchmarks/bench_backend.py --ops history`), mostly for the nine members
  an AttributeValue does not have. For a plain dict the aliases depend on the member alone,
  so they are worked out once per member and looked up in the dict.
- Request dispatch: for every request, moto's server finds the service behind the Host header
  by listing its own package directory (a `listdir` and an `isdir` for each of about 180
  services) and then matching the host against every service's URL patterns, all under one
  lock that every request thread takes. That was 8 % of the backend's samples under history
  reads (py-spy, `benchmarks/bench_backend.py --ops history --page 1`). The answer depends on
  the host alone, so it is kept per host.
- DynamoDB answers: moto walks every answer through botocore's output shapes, member by
  member and value by value, to write JSON that is already in the answer's own form (moto's
  DynamoDB models speak the wire's `{"S": ...}`). With the picker above, that walk was still
  32 % of the backend's samples under 100 chatting users (py-spy --gil of `semichat backend`
  during `semichat simulate --scenario chat --users 100 --routing sharded`). Here a DynamoDB
  answer of items is dumped as it is, the way moto did before it had the shape walk, with
  `None` members left out as the walk leaves them; errors and tables' descriptions still take
  moto's own path.
- A queue's counts: every SendMessage computes all of its queue's attributes (to read one), so
  it counts the queue's messages three ways, reading the clock (a datetime built and
  subtracted) twice for each message each way. That was 12 ms of the backend's CPU a send at
  a backlog of a few thousand (py-spy --gil under `benchmarks/bench_backend.py --ops send`)
  and 6 % of its samples under 100 chatting users. Here each count reads the clock once.
"""

from __future__ import annotations

import copy
import functools
import json
import time
import types
from typing import Any

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models.table import Table


def _no_table_copies() -> types.SimpleNamespace:
    """A stand-in for the `copy` module inside moto's DynamoDB backend: tables are not copied
    (the transaction's own items are, by the wrapper below); everything else is."""

    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    return types.SimpleNamespace(deepcopy=deepcopy, copy=copy.copy)


def key_of(table: Table, attrs: dict[str, Any]) -> dict[str, Any]:
    """The key of the item `attrs` would write to `table` (its hash and range attributes)."""
    key = {table.hash_key_attr: attrs.get(table.hash_key_attr)}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs.get(table.range_key_attr)
    return key


def touched_keys(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    keys = []
    for item in transact_items:
        for op_type, op in item.items():
            table_name = op.get("TableName")
            if table_name not in backend.tables:
                continue
            if op_type == "Put":
                key = key_of(backend.tables[table_name], op["Item"])
            else:
                key = op.get("Key")
            if key and all(v is not None for v in key.values()):
                keys.append((table_name, key))
    return keys


def _snapshot(backend: Any, keys: list[tuple[str, Any]]) -> list[tuple[str, Any, Any]]:
    saved = []
    for table_name, key in keys:
        try:
            current = backend.get_item(table_name, key)
        except Exception:
            current = None
        saved.append((table_name, key, copy.deepcopy(current)))
    return saved


def _restore(backend: Any, saved: list[tuple[str, Any, Any]]) -> None:
    for table_name, key, before in reversed(saved):
        if before is None:
            backend.delete_item(table_name, key)
        else:
            backend.put_item(table_name, before.to_json()["Attributes"])


def _patch_retention_check() -> None:
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(
        self: Any, queue_name: str, message: Any
    ) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > time.time())

    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )


def _patch_attribute_picker() -> None:
    from moto.core import serialize

    picker = serialize.AttributePicker
    slow, possible_keys = picker.__call__, picker.get_possible_keys
    # For a plain dict, the aliases tried depend on the member alone (its key, its shape and
    # the shape's parent; dicts have no `Meta` and one class name): work them out once.
    aliases: dict[tuple[Any, ...], tuple[str, ...]] = {}

    @functools.wraps(slow)
    def pick(self: Any, context: Any) -> Any:
        obj, shape = context.obj, context.shape
        if type(obj) is not dict or self.response_transformers or shape is None:
            return slow(self, context)
        parent = getattr(shape, "parent", None)
        service = context.service_model.service_name if context.service_model else None
        member = (type(self), tuple(self.alias_providers), service, context.key,
                  shape.name, getattr(parent, "name", None))  # fmt: skip
        keys = aliases.get(member)
        if keys is None:
            keys = aliases[member] = tuple(possible_keys(self, context))
        if any("." in k for k in keys):
            return slow(self, context)  # a dotted alias is a path: moto's own lookup
        for k in keys:
            if k in obj:
                return obj[k]
        return None

    picker.__call__ = pick  # type: ignore[method-assign]


def _patch_host_lookup() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    find = DomainDispatcherApplication.get_backend_for_host
    found: dict[str | None, Any] = {}

    @functools.wraps(find)
    def get_backend_for_host(self: Any, host: str | None) -> Any:
        # Called under the dispatcher's lock, so the dict needs none of its own.
        if host not in found:
            found[host] = find(self, host)
        return found[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


def apply() -> None:
    """Patch moto in this process (the embedded backend's own; idempotent)."""
    backend_class = dynamodb_models.DynamoDBBackend
    original = backend_class.transact_write_items
    if getattr(original, "_semichat_patched", False):
        return
    dynamodb_models.copy = _no_table_copies()  # type: ignore[attr-defined,assignment]

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _snapshot(self, touched_keys(self, transact_items))
        try:
            original(self, transact_items)
        except Exception:
            _restore(self, saved)
            raise

    transact_write_items._semichat_patched = True  # type: ignore[attr-defined]
    backend_class.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _patch_retention_check()
    _patch_attribute_picker()
    _patch_host_lookup()
    _patch_dynamodb_answers()
    _patch_queue_counts()
    _patch_deleted_handles()
    _patch_instance_tracking()


def _without_nones(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nones(v) for v in value]
    return value


# The calls whose answers are items (their shapes are what moto's models already hold); a
# table's description is not, and keeps the walk.
ITEM_ANSWERS = frozenset(
    {"GetItem", "Query", "Scan", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem"}
)


def _patch_dynamodb_answers() -> None:
    from moto.dynamodb.models.utilities import DynamoJsonEncoder
    from moto.dynamodb.responses import DynamoResult

    walk = DynamoResult.execute_result

    @functools.wraps(walk)
    def execute_result(self: Any, context: Any) -> Any:
        service = context.service_model
        if (
            context.operation_model.name not in ITEM_ANSWERS
            or service.protocol != "json"
            or not isinstance(self.result, dict)
        ):
            return walk(self, context)
        # Binary values are raw bytes and timestamps datetimes here: the encoder writes them
        # as base64 and epoch seconds, as the walk does.
        body = json.dumps(_without_nones(self.result), cls=DynamoJsonEncoder)
        version = service.metadata.get("jsonVersion", "1.0")
        return 200, {"Content-Type": f"application/x-amz-json-{version}"}, body

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]


def _patch_queue_counts() -> None:
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Queue

    # As `Message.visible` (now > visible_at) and `Message.delayed` (now < delayed_until) say,
    # with one `now` for the whole queue.
    def messages(self: Any) -> list[Any]:
        now = unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def delayed(self: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in self._messages if now < m.delayed_until)

    def not_visible(self: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in self._messages if not now > m.visible_at)

    Queue.messages = property(messages)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages_delayed = property(delayed)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages_not_visible = property(not_visible)  # type: ignore[assignment,method-assign]


# A delete of a handle deleted this recently still succeeds, as on SQS, where a handle stays
# valid until its visibility timeout ends (30 s by default; a repeated delete comes within
# seconds). Kept by age, so a queue's record stops growing once its first minutes have passed;
# the count is a backstop for a burst.
DELETED_HANDLES_KEPT_S = 300.0
DELETED_HANDLES_KEPT = 10_000


class RecentHandles:
    """The receipt handles a queue deleted in the last `keep_s` seconds, at most `limit` of
    them: moto keeps every handle it ever deleted in a set (`Queue.deleted_messages`), so a
    long-running backend grew by about 3 MB a minute under a 20-user soak (`benchmarks/soak.py`);
    the latest 1,000 per queue still grew for the soak's first 20 minutes."""

    def __init__(
        self,
        keep_s: float = DELETED_HANDLES_KEPT_S,
        limit: int = DELETED_HANDLES_KEPT,
        clock: Any = time.monotonic,
    ) -> None:
        self.keep_s, self.limit, self._clock = keep_s, limit, clock
        self._handles: dict[str, float] = {}  # in the order deleted

    def __contains__(self, handle: object) -> bool:
        return handle in self._handles

    def __len__(self) -> int:
        return len(self._handles)

    def add(self, handle: str) -> None:
        now = self._clock()
        self._handles.pop(handle, None)
        self._handles[handle] = now
        while True:
            oldest = next(iter(self._handles))
            if len(self._handles) <= self.limit and now - self._handles[oldest] <= self.keep_s:
                break
            del self._handles[oldest]

    def update(self, handles: Any) -> None:
        for handle in handles:
            self.add(handle)

    def discard(self, handle: str) -> None:
        self._handles.pop(handle, None)


def _patch_instance_tracking() -> None:
    from moto.core.common_models import BaseModel

    def untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
        return super(BaseModel, cls).__new__(cls)  # type: ignore[misc]

    BaseModel.__new__ = untracked_new  # type: ignore[assignment,method-assign]


def _patch_deleted_handles() -> None:
    from moto.sqs.models import Queue

    init = Queue.__init__

    @functools.wraps(init)
    def queue_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.deleted_messages = RecentHandles()

    Queue.__init__ = queue_init  # type: ignore[method-assign]
