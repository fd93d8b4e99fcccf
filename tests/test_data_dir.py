"""The embedded backend's data lifetime (issue 25): in memory unless `serve --data-dir D`,
which keeps history, queue mappings and queues across restarts, never one without the other."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from semichat.aws.tables import USER_QUEUES, table_names
from semichat.emulator.persistence import STATE_FILE, _rewrite, read_state, write_state

from .test_browser import ChatServer, api

PREFIX = "semichat-"


def serving_line(server: ChatServer) -> dict[str, Any]:
    """The last start-up line in the server's log (one per start)."""
    lines = [
        json.loads(line)
        for line in server.log_path.read_text().splitlines()
        if line.startswith("{") and "serving on" in line
    ]
    return dict(lines[-1])


def aws(line: dict[str, Any], service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=line[service],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def mapping(line: dict[str, Any], user: str) -> str | None:
    item = aws(line, "dynamodb").get_item(
        TableName=table_names(PREFIX)[USER_QUEUES], Key={"userId": {"S": user}}
    )
    return item["Item"]["queueUrl"]["S"] if "Item" in item else None


def history(base: str, user: str, conversation_id: str) -> list[str]:
    path = f"/api/chat/history?conversationId={conversation_id}&limit=200"
    return [m["text"] for m in api(base, user, "GET", path)["messages"]]


@pytest.mark.backend
def test_serve_with_a_data_dir_keeps_history_queue_mappings_and_queues(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    data = tmp_path / "data"
    server = ChatServer(f"data-dir-{tag}", ["--backend", "embedded", "--data-dir", str(data)])
    try:
        server.start()
        first = serving_line(server)
        assert f"data kept in {data}" in first["msg"]
        conv = api(server.url, alice, "POST", "/api/chat/conversations", {"participants": [bob]})
        conv_id = conv["conversationId"]
        texts = [f"kept {i} {tag}" for i in range(3)]
        for text in texts:
            body = {"conversationId": conv_id, "text": text, "idempotencyKey": uuid.uuid4().hex}
            api(server.url, alice, "POST", "/api/chat/send", body)
        before = mapping(first, bob)
        assert before is not None and before.startswith(first["sqs"])
        waiting = aws(first, "sqs").get_queue_attributes(
            QueueUrl=before, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        assert waiting == "3"  # bob's notifications, never read

        server.stop()  # SIGTERM: serve stops its backend, which saves once more
        assert (data / STATE_FILE).is_file()
        server.start()
        second = serving_line(server)
        assert second["sqs"] != first["sqs"]  # a new backend process on a new port

        assert history(server.url, bob, conv_id) == texts
        after = mapping(second, bob)
        # The mapping kept, moved to the new endpoint, and naming a queue that exists there
        # with bob's unread notifications in it.
        assert after == second["sqs"] + before[len(first["sqs"]) :]
        sqs = aws(second, "sqs")
        assert sqs.get_queue_url(QueueName=after.rsplit("/", 1)[-1])["QueueUrl"] == after
        got = sqs.receive_message(QueueUrl=after, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        assert len(got.get("Messages", [])) == 3
    finally:
        server.release()


@pytest.mark.backend
def test_serve_without_a_data_dir_says_its_data_is_in_memory() -> None:
    server = ChatServer(f"in-memory-{uuid.uuid4().hex[:6]}", ["--backend", "embedded"])
    try:
        server.start()
        assert "data in memory only, gone when serve stops" in serving_line(server)["msg"]
    finally:
        server.release()


def test_a_snapshot_is_written_whole_and_only_when_it_changed(tmp_path: Path) -> None:
    state = {"format": 1, "endpoint": "http://127.0.0.1:1", "tables": [], "queues": []}
    digest = write_state(tmp_path, state)
    stamp = (tmp_path / STATE_FILE).stat().st_mtime_ns
    assert write_state(tmp_path, state, digest) == digest
    assert (tmp_path / STATE_FILE).stat().st_mtime_ns == stamp  # unchanged: not rewritten
    assert read_state(tmp_path) == state
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]  # no temporary file left


def test_queue_urls_in_items_move_to_the_new_endpoint() -> None:
    item = {
        "userId": {"S": "bob"},
        "queueUrl": {"S": "http://127.0.0.1:1111/123456789012/semichat-bob"},
        "note": {"S": "http://127.0.0.1:11112/elsewhere"},
        "list": {"L": [{"S": "http://127.0.0.1:1111/x"}]},
    }
    moved = _rewrite(item, "http://127.0.0.1:1111", "http://127.0.0.1:2222")
    assert moved["queueUrl"]["S"] == "http://127.0.0.1:2222/123456789012/semichat-bob"
    assert moved["note"] == item["note"]  # another port that merely starts alike
    assert moved["list"]["L"][0]["S"] == "http://127.0.0.1:2222/x"
