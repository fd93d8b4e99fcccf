"""Where the backends differ from each other and from AWS, measured, so that notebooks know
what they may rely on. Each test asserts what the backend under test does (`EXPECTED`) and its
docstring says what AWS documents; a changed emulator version makes the test fail loudly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from .conftest import Backend, emulator_client

MANY = 1001
CREATE_WORKERS = 16
# Measured here: 1,001 queues in 5 s (LocalStack) and 7 s (moto) with 16 threads on 2 cores;
# the bound leaves room for a loaded CI machine and fails if creation degrades badly.
CREATE_BOUND_S = 60.0


@pytest.fixture
def pooled_sqs(backend: Backend) -> Any:
    return emulator_client(
        "sqs", backend.sqs_endpoint, config=Config(max_pool_connections=CREATE_WORKERS)
    )


@pytest.fixture
def many_queues(pooled_sqs: Any) -> Iterator[tuple[str, list[str], float]]:
    prefix = f"many{uuid.uuid4().hex[:6]}-"
    started = time.monotonic()
    with ThreadPoolExecutor(CREATE_WORKERS) as pool:
        urls = list(
            pool.map(
                lambda i: pooled_sqs.create_queue(QueueName=f"{prefix}{i:04d}")["QueueUrl"],
                range(MANY),
            )
        )
    elapsed = time.monotonic() - started
    try:
        yield prefix, urls, elapsed
    finally:
        with ThreadPoolExecutor(CREATE_WORKERS) as pool:
            list(pool.map(lambda url: pooled_sqs.delete_queue(QueueUrl=url), urls))


def test_list_queues_past_one_thousand(
    backend: Backend, pooled_sqs: Any, many_queues: tuple[str, list[str], float]
) -> None:
    """AWS: ListQueues returns at most 1,000 URLs; only with `MaxResults` does it return a
    `NextToken` to page on, otherwise the list is silently cut at 1,000.

    Measured: both emulators cut at 1,000 and page correctly with `MaxResults`. Without
    `MaxResults`, moto returns no `NextToken` (as AWS documents), LocalStack returns one anyway.
    Code that must see every queue passes `MaxResults` and follows `NextToken`.
    """
    prefix, urls, elapsed = many_queues
    assert elapsed < CREATE_BOUND_S, f"creating {MANY} queues took {elapsed:.1f} s"

    unpaged = pooled_sqs.list_queues(QueueNamePrefix=prefix)
    assert len(unpaged["QueueUrls"]) == 1000
    token_without_max_results = {"embedded": False, "localstack": True}
    assert ("NextToken" in unpaged) is token_without_max_results[backend.name]

    seen: list[str] = []
    kwargs: dict[str, Any] = {"QueueNamePrefix": prefix, "MaxResults": 1000}
    for _ in range(3):
        page = pooled_sqs.list_queues(**kwargs)
        seen += page.get("QueueUrls", [])
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert sorted(seen) == sorted(urls)


def test_fifo_deduplication_after_delete(backend: Backend, sqs: Any) -> None:
    """AWS: a FIFO queue drops a message whose deduplication id it has accepted within the last
    5 minutes, even if that message has since been received and deleted.

    Measured: LocalStack keeps the window after delete (as AWS); moto forgets a deduplication id
    once its message is deleted and delivers the resend.
    """
    url = sqs.create_queue(
        QueueName=f"dedup{uuid.uuid4().hex[:6]}.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    try:
        send = {"QueueUrl": url, "MessageGroupId": "g", "MessageDeduplicationId": "d1"}
        sqs.send_message(MessageBody="first", **send)
        [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        sqs.send_message(MessageBody="resend", **send)
        again = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
        redelivered = {"embedded": 1, "localstack": 0}
        assert len(again) == redelivered[backend.name]

        # While the first copy is still queued, both drop the duplicate, as AWS does.
        second = {**send, "MessageDeduplicationId": "d2"}
        sqs.send_message(MessageBody="b", **second)
        sqs.send_message(MessageBody="b", **second)
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        assert attrs["ApproximateNumberOfMessages"] == "1"  # a resend received is in flight
    finally:
        sqs.delete_queue(QueueUrl=url)


def test_deleted_queue_name_is_reusable_at_once(sqs: Any) -> None:
    """AWS: a deleted queue's name cannot be reused for 60 s (`QueueDeletedRecently`).

    Measured: neither emulator enforces it (LocalStack only with SQS_DELAY_RECENTLY_DELETED=1,
    which host mode leaves off), so tests that delete and recreate a user's queue pass here but
    would wait a minute on AWS.
    """
    name = f"reuse{uuid.uuid4().hex[:6]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    assert sqs.create_queue(QueueName=name)["QueueUrl"] == url
    sqs.delete_queue(QueueUrl=url)


def test_message_size_limit(sqs: Any) -> None:
    """AWS: a queue's `MaximumMessageSize` defaults to 1,048,576 bytes (the CreateQueue
    reference in botocore 1.43's SQS model; it was 262,144 before 2026), and a larger body is
    refused with `InvalidParameterValue`.

    Measured: moto 5.2.5 as AWS documents it. The `[localstack]` variant asserts the same; its
    author could not run LocalStack, so a failure there is a finding about LocalStack.
    """
    url = sqs.create_queue(QueueName=f"size{uuid.uuid4().hex[:6]}")["QueueUrl"]
    try:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MaximumMessageSize"])
        assert attrs["Attributes"]["MaximumMessageSize"] == "1048576"
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1_048_576)
        with pytest.raises(ClientError) as info:
            sqs.send_message(QueueUrl=url, MessageBody="x" * 1_048_577)
        assert info.value.response["Error"]["Code"] == "InvalidParameterValue"
    finally:
        sqs.delete_queue(QueueUrl=url)


def test_queue_url_shape(backend: Backend, sqs: Any) -> None:
    """AWS: `https://sqs.<region>.amazonaws.com/<account>/<name>`.

    Measured: moto answers `<endpoint>/123456789012/<name>`; LocalStack (path strategy) answers
    `<endpoint>/queue/<region>/000000000000/<name>`. The app treats URLs as opaque strings from
    CreateQueue, so only the account differs in what it stores.
    """
    name = f"shape{uuid.uuid4().hex[:6]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    try:
        expected = {
            "embedded": f"{backend.sqs_endpoint}/123456789012/{name}",
            "localstack": f"{backend.sqs_endpoint}/queue/us-east-1/000000000000/{name}",
        }
        assert url == expected[backend.name]
    finally:
        sqs.delete_queue(QueueUrl=url)
