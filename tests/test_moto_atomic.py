"""The embedded backend's item locks (`semichat/emulator/patches/atomic.py`): writes to one
item wait for each other, writes to other items do not, and every kind of write names an item
the same way."""

from __future__ import annotations

import inspect
import threading
import time
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

from semichat.emulator.patches import atomic as moto_atomic

WAIT_S = 30


def _hold_in_thread(keys: list[moto_atomic.ItemKey]) -> tuple[threading.Event, threading.Event]:
    """Enter `holding(keys)` on another thread; returns (entered, leave)."""
    entered, leave = threading.Event(), threading.Event()

    def run() -> None:
        with moto_atomic.holding(keys):
            entered.set()
            leave.wait(WAIT_S)

    threading.Thread(target=run, daemon=True).start()
    return entered, leave


def test_a_write_waits_for_another_on_its_item_and_not_for_one_on_another() -> None:
    one, other = ("t", '{"k": {"S": "1"}}'), ("t", '{"k": {"S": "2"}}')
    first_in, first_out = _hold_in_thread([one])
    assert first_in.wait(WAIT_S)
    elsewhere_in, elsewhere_out = _hold_in_thread([other])
    assert elsewhere_in.wait(WAIT_S)
    elsewhere_out.set()
    second_in, second_out = _hold_in_thread([one, other])
    # Once the second has registered for the item, it can only be waiting for the first.
    deadline = time.monotonic() + WAIT_S
    while moto_atomic._held.get(one, [None, 0])[1] < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert not second_in.is_set()
    first_out.set()
    assert second_in.wait(WAIT_S)
    second_out.set()


def test_the_locks_of_finished_writes_are_dropped() -> None:
    key = ("t", "dropped")
    with moto_atomic.holding([key, key]), moto_atomic.holding([key]):  # re-entrant
        assert moto_atomic._held[key][1] == 2
    assert key not in moto_atomic._held


class _Table:
    hash_key_attr, range_key_attr = "c", "s"


def test_every_write_names_an_item_alike() -> None:
    backend: Any = type("Backend", (), {"tables": {"m": _Table()}})()
    key = {"c": {"S": "conv"}, "s": {"S": "0001#id"}}
    item = {**key, "text": {"S": "hi"}}

    def keys(name: str, **arguments: Any) -> list[moto_atomic.ItemKey]:
        write = getattr(DynamoDBBackend, name)
        write = getattr(write, "__wrapped__", write)
        call = inspect.signature(write).bind_partial(backend, **arguments)
        return moto_atomic._keys(backend, name, call)

    put = keys("put_item", table_name="m", item_attrs=item)
    update = keys("update_item", table_name="m", key=dict(reversed(key.items())))
    delete = keys("delete_item", table_name="m", key=key)
    transaction = keys("transact_write_items", transact_items=[
        {"Put": {"TableName": "m", "Item": item}},
        {"Update": {"TableName": "m", "Key": key}},
        {"ConditionCheck": {"TableName": "m", "Key": {**key, "s": {"S": "other"}}}},
    ])  # fmt: skip
    assert put == update == delete == transaction[:1] == transaction[1:2]
    assert transaction[2] != put
