"""The page-by-key query (`semichat/emulator/patches/pages.py`) answers as moto's own query does:
the same items in the same order, the same `ScannedCount` and `LastEvaluatedKey`, for generated
partitions, limits, directions and start keys, in both sort-key types it takes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

from semichat.emulator.patches import pages

pages.apply()
MOTOS_QUERY = Table.query.__wrapped__  # type: ignore[attr-defined]


def _table(kind: str, items: list[tuple[str, Any]]) -> Table:
    table = Table(
        "t",
        account_id="123456789012",
        region="us-east-1",
        schema=[
            {"AttributeName": "p", "KeyType": "HASH"},
            {"AttributeName": "r", "KeyType": "RANGE"},
        ],
        attr=[
            {"AttributeName": "p", "AttributeType": "S"},
            {"AttributeName": "r", "AttributeType": kind},
        ],
    )
    for p, r in items:
        table.put_item({"p": {"S": p}, "r": {kind: str(r)}, "body": {"S": "x" * 40}})
    return table


def _answer(result: tuple[list[Any], int, dict[str, Any] | None]) -> tuple[Any, ...]:
    items, scanned, last = result
    plain_last = None if last is None else {k: v.to_json() for k, v in last.items()}
    return [i.to_json() for i in items], scanned, plain_last


keys = st.one_of(
    st.tuples(st.just("S"), st.lists(st.text("ab01", min_size=1, max_size=4), max_size=40)),
    st.tuples(st.just("N"), st.lists(st.integers(-50, 500), max_size=40)),
)


@settings(max_examples=150, deadline=None)
@given(
    keys,
    st.sampled_from(["a", "b", "nobody"]),
    st.one_of(st.none(), st.integers(1, 12)),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 60)),
)
def test_a_page_read_by_key_is_motos_page(
    kinds: tuple[str, list[Any]], partition: str, limit: int | None, forward: bool, at: int | None
) -> None:
    kind, ranges = kinds
    table = _table(kind, [(p, r) for r in ranges for p in ("a", "b")])
    start = None
    if at is not None:  # a start key that exists in the partition, or one between keys
        value = str(sorted(ranges)[at % len(ranges)]) if ranges and at % 2 else str(at)
        start = {"p": {"S": partition}, "r": {kind: value}}
    hash_key = DynamoType({"S": partition})
    assert pages._is_plain_page(table, hash_key, {"limit": limit})
    ours = pages.page(table, hash_key, limit, start, forward)
    motos = MOTOS_QUERY(table, hash_key, None, [], limit, start, forward, None)
    assert _answer(ours) == _answer(motos)


def test_a_filtered_or_indexed_query_keeps_motos_path() -> None:
    table = _table("S", [("a", "1")])
    hash_key = DynamoType({"S": "a"})
    assert not pages._is_plain_page(table, hash_key, {"range_comparison": "BEGINS_WITH"})
    assert not pages._is_plain_page(table, hash_key, {"index_name": "byUser"})
    assert not pages._is_plain_page(table, hash_key, {"filter_expression": object()})
    assert not pages._is_plain_page(table, hash_key, {"filter_kwargs": {"x": {}}})
    assert not pages._is_plain_page(table, None, {})


def test_a_history_read_as_moto_passes_it_takes_the_page_by_key(monkeypatch: Any) -> None:
    # What `DynamoDBBackend.query` hands the table for `store.history`'s request: no filter
    # becomes moto's `OpDefault`, no sort-key condition an empty list.
    table = _table("S", [("a", "1"), ("a", "2"), ("a", "3")])
    read: list[int | None] = []
    original = pages.page

    def spy(table: Table, hash_key: Any, limit: int | None, *rest: Any) -> Any:
        read.append(limit)
        return original(table, hash_key, limit, *rest)

    monkeypatch.setattr(pages, "page", spy)
    items, _, last = Table.query(
        table,
        DynamoType({"S": "a"}),
        None,
        [],
        2,
        None,
        False,
        None,
        None,
        True,
        get_filter_expression(None, {}, {}),
        hash_key_conditions=[("p", DynamoType({"S": "a"}))],
        range_key_conditions=[],
    )
    assert read == [2]
    assert [i.attrs["r"].value for i in items] == ["3", "2"]
    assert last is not None and last["r"].value == "2"
