"""What the embedded backend changes in moto, each with the measurement that justified it.

- TransactWriteItems: moto deep-copies every table a transaction touches before it starts, to
  roll back on failure. Under concurrent sends the copy was 7.5 % of the backend's time
  (py-spy of `semichat backend` during `benchmarks/bench_streams.py`, 10 sends a second), and
  a write landing during the copy broke it ("dictionary changed size during iteration", a 500
  the client retried: 4 to 9 a run). Here a transaction copies the items it touches only, and
  a cancelled one restores those items alone. That is also what DynamoDB does: moto's
  whole-table restore erased what other requests wrote meanwhile (see README, Faults).
"""

from __future__ import annotations

import copy
import functools
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


def _touched_keys(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    keys = []
    for item in transact_items:
        for op_type, op in item.items():
            table_name = op.get("TableName")
            if table_name not in backend.tables:
                continue
            if op_type == "Put":
                table = backend.tables[table_name]
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs.get(table.hash_key_attr)}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs.get(table.range_key_attr)
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


def apply() -> None:
    """Patch moto in this process (the embedded backend's own; idempotent)."""
    backend_class = dynamodb_models.DynamoDBBackend
    original = backend_class.transact_write_items
    if getattr(original, "_semichat_patched", False):
        return
    dynamodb_models.copy = _no_table_copies()  # type: ignore[attr-defined]

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _snapshot(self, _touched_keys(self, transact_items))
        try:
            original(self, transact_items)
        except Exception:
            _restore(self, saved)
            raise

    transact_write_items._semichat_patched = True  # type: ignore[attr-defined]
    backend_class.transact_write_items = transact_write_items  # type: ignore[method-assign]
