"""DynamoDB units from item sizes (`semichat/aws/capacity.py`), and the per-operation usage the
server counts from botocore's events (`semichat/aws/usage.py`)."""

from __future__ import annotations

import pytest

from semichat.aws.capacity import (
    item_size,
    read_units,
    request_write_units,
    response_read_units,
    write_units,
)
from semichat.aws.usage import BackendUsage, bucket_label, percentile_ms
from semichat.harness.usage_report import backend_usage


def test_an_item_weighs_its_attribute_names_and_values() -> None:
    item = {"ab": {"S": "xyz"}, "n": {"N": "12345"}, "t": {"BOOL": True}, "s": {"SS": ["a", "bc"]}}
    assert item_size(item) == (2 + 3) + (1 + 4) + (1 + 1) + (1 + 3)


def test_a_strongly_consistent_page_over_4_kb_costs_two_units() -> None:
    assert read_units([2500, 2500], consistent=True) == 2.0
    assert read_units([2500, 2500], consistent=False) == 1.0
    assert read_units([], consistent=True) == 1.0  # nothing found still costs the minimum


def test_a_write_costs_a_unit_per_kb_and_twice_in_a_transaction() -> None:
    assert write_units(1024) == 1.0
    assert write_units(1025) == 2.0
    assert write_units(10, transactional=True) == 2.0


def test_a_history_query_is_priced_from_the_items_it_returned() -> None:
    big = {"text": {"S": "x" * 3000}}
    params = {"ConsistentRead": True}
    assert response_read_units("Query", params, {"Items": [big, big]}) == 2.0
    assert response_read_units("Query", {}, {"Items": [big, big]}) == 1.0


def test_a_transaction_and_a_batch_are_priced_per_item() -> None:
    small = {"k": {"S": "v"}}
    txn = {"TransactItems": [{"Put": {"Item": small}}, {"Put": {"Item": small}}]}
    assert request_write_units("TransactWriteItems", txn) == 4.0
    batch = {"RequestItems": {"t": [{"PutRequest": {"Item": small}}] * 3}}
    assert request_write_units("BatchWriteItem", batch) == 3.0


def test_latency_buckets_give_percentiles() -> None:
    usage = BackendUsage()
    for ms in range(1, 101):
        usage.record("sqs:SendMessage", float(ms), failed=False)
    buckets = usage.snapshot()["latency_ms"]["sqs:SendMessage"]
    assert bucket_label(7) == "8"
    assert percentile_ms(buckets, 50) == pytest.approx(50, abs=5)
    assert percentile_ms(buckets, 99) == pytest.approx(99, abs=5)


def test_a_runs_usage_is_the_difference_of_two_reads_summed_over_lives() -> None:
    def read(n: int, units: float) -> dict:
        usage = BackendUsage()
        for _ in range(n):
            usage.record("dynamodb:Query", 5.0, failed=False, read_units=units)
        return {"backend": usage.snapshot()}

    lives = [(read(2, 1.0), read(5, 1.0)), ({}, read(4, 2.0))]
    usage = backend_usage(lives)
    assert usage is not None
    assert usage["requests"] == {"dynamodb:Query": 3 + 4}
    assert usage["dynamodb_read_units"] == 3.0 + 8.0
    assert usage["latency_ms"]["dynamodb:Query"]["buckets"] == {"5": 7}


def test_a_long_polls_wake_up_is_timed_from_the_message_that_woke_it() -> None:
    import time

    from semichat.aws.usage import _wake_ms

    now = time.time()
    woke = {"Messages": [{"Attributes": {"SentTimestamp": str(int((now - 0.05) * 1000))}}]}
    wake = _wake_ms(woke, asked_at=now - 10)
    assert wake is not None and 40 <= wake <= 1000
    # A message that was waiting before the poll was asked did not wake it.
    assert _wake_ms(woke, asked_at=now) is None
    assert _wake_ms({}, asked_at=now - 10) is None


def test_sqs_bills_a_request_per_64_kb_chunk_and_an_empty_receive_once() -> None:
    from semichat.aws.usage import sqs_billed_requests

    assert sqs_billed_requests("SendMessage", {"MessageBody": "x" * 100}, {}) == 1
    assert sqs_billed_requests("SendMessage", {"MessageBody": "x" * (64 * 1024 + 1)}, {}) == 2
    bodies = {"Messages": [{"Body": "y" * 40_000}, {"Body": "y" * 40_000}]}
    assert sqs_billed_requests("ReceiveMessage", {}, bodies) == 2
    assert sqs_billed_requests("ReceiveMessage", {}, {}) == 1
