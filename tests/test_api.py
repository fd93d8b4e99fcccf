"""The HTTP contract: conversations, send, history, identity and every error status."""

from __future__ import annotations

import json
from typing import Any

import pytest

from semichat.aws.tables import CONVERSATIONS, table_names
from semichat.settings import Settings

Client = Any


def as_user(user: str) -> dict[str, str]:
    return {"x-user-id": user}


async def send(client: Client, user: str, conversation: str, text: str, key: str) -> Any:
    return await client.post(
        "/api/chat/send",
        json={"conversationId": conversation, "text": text, "idempotencyKey": key},
        headers=as_user(user),
    )


async def history(client: Client, user: str, conversation: str, **params: Any) -> Any:
    return await client.get(
        "/api/chat/history",
        params={"conversationId": conversation, **params},
        headers=as_user(user),
    )


async def new_conversation(client: Client, creator: str, *others: str) -> str:
    resp = await client.post(
        "/api/chat/conversations", json={"participants": list(others)}, headers=as_user(creator)
    )
    assert resp.status == 201, await resp.text()
    return (await resp.json())["conversationId"]


async def test_send_then_history_shows_it(client: Client) -> None:
    resp = await send(client, "alice", "support-demo", "hello there", "k-1")
    assert resp.status == 201
    sent = await resp.json()
    assert sent["duplicate"] is False
    assert sent["senderId"] == "alice"
    assert sent["conversationId"] == "support-demo"
    assert sent["createdAt"].endswith("Z")

    resp = await history(client, "bob", "support-demo")
    assert resp.status == 200
    body = await resp.json()
    assert body["nextCursor"] is None
    assert body["messages"] == [
        {
            "messageId": sent["messageId"],
            "conversationId": "support-demo",
            "senderId": "alice",
            "text": "hello there",
            "createdAt": sent["createdAt"],
        }
    ]


async def test_create_conversation_includes_caller(client: Client) -> None:
    resp = await client.post(
        "/api/chat/conversations", json={"participants": ["bob", "carol"]}, headers=as_user("al")
    )
    assert resp.status == 201
    body = await resp.json()
    assert sorted(body["participants"]) == ["al", "bob", "carol"]
    assert body["conversationId"]


async def test_identity_from_cookie(client: Client) -> None:
    resp = await client.get(
        "/api/chat/history", params={"conversationId": "support-demo"}, cookies={"uid": "zoe"}
    )
    assert resp.status == 200


async def test_non_participant_is_forbidden_and_nothing_is_stored(client: Client) -> None:
    conversation = await new_conversation(client, "alice", "bob")
    assert (await send(client, "mallory", conversation, "let me in", "m-1")).status == 403
    resp = await history(client, "mallory", conversation)
    assert resp.status == 403
    assert (await resp.json())["error"] == "you are not a participant of this conversation"
    assert (await send(client, "bob", conversation, "hi alice", "b-1")).status == 201
    messages = (await (await history(client, "alice", conversation)).json())["messages"]
    assert [m["text"] for m in messages] == ["hi alice"]


async def test_unknown_conversation_is_404(client: Client) -> None:
    assert (await send(client, "alice", "no-such-room", "hi", "k")).status == 404
    resp = await history(client, "alice", "no-such-room")
    assert resp.status == 404
    assert (await resp.json())["error"] == "conversation no-such-room does not exist"


def conversation_participants(dynamodb: Any, settings: Settings, conversation: str) -> set[str]:
    """The participants row as stored in DynamoDB, read past the app."""
    item = dynamodb.get_item(
        TableName=table_names(settings.table_prefix)[CONVERSATIONS],
        Key={"conversationId": {"S": conversation}},
        ConsistentRead=True,
    ).get("Item", {})
    return set(item.get("participants", {}).get("SS", []))


async def test_support_demo_joins_reader_and_support(
    client: Client, dynamodb: Any, settings: Settings
) -> None:
    # `client` has created the tables; nobody has touched the demo conversation yet.
    assert conversation_participants(dynamodb, settings, "support-demo") == set()
    assert (await history(client, "dave", "support-demo")).status == 200
    # Reading alone joined dave, and support with him.
    assert conversation_participants(dynamodb, settings, "support-demo") == {"dave", "support"}
    assert (await send(client, "support", "support-demo", "hello dave", "s-1")).status == 201
    assert (await history(client, "erin", "support-demo")).status == 200
    assert conversation_participants(dynamodb, settings, "support-demo") == {
        "dave",
        "erin",
        "support",
    }


async def test_history_pages_cover_every_message_once(client: Client) -> None:
    conversation = await new_conversation(client, "alice", "bob")
    sent = []
    for i in range(12):
        resp = await send(client, "alice" if i % 2 else "bob", conversation, f"m{i}", f"k{i}")
        sent.append((await resp.json())["messageId"])

    first = await (await history(client, "alice", conversation, limit=5)).json()
    assert [m["messageId"] for m in first["messages"]] == sent[-5:]
    pages = [first]
    while pages[-1]["nextCursor"]:
        resp = await history(client, "alice", conversation, limit=5, cursor=pages[-1]["nextCursor"])
        assert resp.status == 200
        pages.append(await resp.json())
    assert [len(p["messages"]) for p in pages] == [5, 5, 2]
    seen = [m["messageId"] for p in reversed(pages) for m in p["messages"]]
    assert seen == sent


async def test_history_default_and_max_limit(client: Client) -> None:
    conversation = await new_conversation(client, "alice")
    for i in range(52):
        await send(client, "alice", conversation, f"m{i}", f"k{i}")
    body = await (await history(client, "alice", conversation)).json()
    assert len(body["messages"]) == 50
    assert body["nextCursor"]
    body = await (await history(client, "alice", conversation, limit=200)).json()
    assert len(body["messages"]) == 52
    assert body["nextCursor"] is None


async def test_idempotent_retry_returns_same_message(client: Client) -> None:
    first = await send(client, "alice", "support-demo", "once", "same-key")
    again = await send(client, "alice", "support-demo", "once", "same-key")
    assert (first.status, again.status) == (201, 200)
    a, b = await first.json(), await again.json()
    # The replay answers with the stored message, field for field.
    assert b == {**a, "duplicate": True}
    messages = (await (await history(client, "alice", "support-demo")).json())["messages"]
    assert [m["text"] for m in messages] == ["once"]


async def test_idempotency_key_from_header(client: Client) -> None:
    body = {"conversationId": "support-demo", "text": "via header"}
    headers = {**as_user("alice"), "Idempotency-Key": "hdr-1"}
    first = await client.post("/api/chat/send", json=body, headers=headers)
    again = await client.post("/api/chat/send", json=body, headers=headers)
    assert (first.status, again.status) == (201, 200)


async def test_same_key_is_per_sender(client: Client) -> None:
    a = await send(client, "alice", "support-demo", "same text", "shared-key")
    b = await send(client, "bob", "support-demo", "same text", "shared-key")
    assert (a.status, b.status) == (201, 201)
    assert (await a.json())["messageId"] != (await b.json())["messageId"]


async def test_key_reused_for_other_content_is_422(client: Client) -> None:
    other = await new_conversation(client, "alice")
    assert (await send(client, "alice", "support-demo", "first", "k")).status == 201
    resp = await send(client, "alice", "support-demo", "different", "k")
    assert resp.status == 422
    assert (await resp.json())["error"] == (
        "idempotencyKey was already used for a different message by this sender"
    )
    assert (await send(client, "alice", other, "first", "k")).status == 422
    messages = (await (await history(client, "alice", "support-demo")).json())["messages"]
    assert [m["text"] for m in messages] == ["first"]


def _send_body(**over: Any) -> dict[str, Any]:
    return {"conversationId": "support-demo", "text": "hi", "idempotencyKey": "k", **over}


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, _send_body(), 401),
        ({"x-user-id": ""}, _send_body(), 401),
        ({"x-user-id": "has space"}, _send_body(), 400),
        ({"x-user-id": "x" * 65}, _send_body(), 400),
        ({"x-user-id": "alice"}, b"{not json", 400),
        ({"x-user-id": "alice"}, b"\xff\xfe", 400),
        ({"x-user-id": "alice"}, [1, 2], 400),
        ({"x-user-id": "alice"}, {"text": "hi", "idempotencyKey": "k"}, 400),
        ({"x-user-id": "alice"}, _send_body(text=5), 400),
        ({"x-user-id": "alice"}, _send_body(text="   "), 400),
        ({"x-user-id": "alice"}, _send_body(conversationId=["x"]), 400),
        ({"x-user-id": "alice"}, _send_body(conversationId="bad id!"), 400),
        ({"x-user-id": "alice"}, {"conversationId": "support-demo", "text": "hi"}, 400),
        ({"x-user-id": "alice"}, _send_body(idempotencyKey=7), 400),
        ({"x-user-id": "alice"}, _send_body(idempotencyKey=""), 400),
        ({"x-user-id": "alice"}, _send_body(text="x" * 4001), 413),
        ({"x-user-id": "alice"}, _send_body(text="x" * 70_000), 413),
        ({"x-user-id": "alice"}, json.dumps(_send_body(pad="y" * 70_000)).encode(), 413),
        ({"x-user-id": "alice", "Idempotency-Key": "other"}, _send_body(), 400),
    ],
)
async def test_send_rejects_bad_input_with_json_error(
    client: Client, headers: dict[str, str], body: Any, status: int
) -> None:
    if isinstance(body, bytes):
        resp = await client.post("/api/chat/send", data=body, headers=headers)
    else:
        resp = await client.post("/api/chat/send", json=body, headers=headers)
    assert resp.status == status
    assert resp.content_type == "application/json"
    assert isinstance((await resp.json())["error"], str)
    # Nothing half-written: the conversation is still empty.
    messages = (await (await history(client, "alice", "support-demo")).json())["messages"]
    assert messages == []


async def test_text_of_exactly_the_limit_is_accepted(client: Client) -> None:
    assert (await send(client, "alice", "support-demo", "x" * 4000, "edge")).status == 201


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 400),
        ({"conversationId": ""}, 400),
        ({"conversationId": "support-demo", "limit": "abc"}, 400),
        ({"conversationId": "support-demo", "limit": "0"}, 400),
        ({"conversationId": "support-demo", "limit": "-1"}, 400),
        ({"conversationId": "support-demo", "limit": "201"}, 400),
        ({"conversationId": "support-demo", "cursor": "%%%"}, 400),
        ({"conversationId": "support-demo", "cursor": "bm90LWpzb24"}, 400),
        ({"conversationId": "support-demo", "cursor": "eyJrIjogM30"}, 400),
    ],
)
async def test_history_rejects_bad_query(client: Client, params: dict, status: int) -> None:
    resp = await client.get("/api/chat/history", params=params, headers=as_user("alice"))
    assert resp.status == status
    assert isinstance((await resp.json())["error"], str)


@pytest.mark.parametrize(
    "body",
    [{}, {"participants": "bob"}, {"participants": ["ok", "not ok"]}, {"participants": [1]}],
)
async def test_create_conversation_rejects_bad_input(client: Client, body: Any) -> None:
    resp = await client.post("/api/chat/conversations", json=body, headers=as_user("alice"))
    assert resp.status == 400
    assert "error" in await resp.json()


async def test_unknown_route_and_method_are_json(client: Client) -> None:
    resp = await client.get("/api/chat/nope")
    assert resp.status == 404
    assert "error" in await resp.json()
    resp = await client.get("/api/chat/send", headers=as_user("alice"))
    assert resp.status == 405
    assert "error" in await resp.json()


async def test_healthz_and_metrics(client: Client) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"
    await send(client, "alice", "support-demo", "count me", "c-1")
    sqs = (await (await client.get("/metrics")).json())["sqs"]
    # alice and support each get one notification, on queues created for them.
    assert sqs["send"] == 2
    assert sqs["create_queue"] == 2
