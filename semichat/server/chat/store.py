"""The DynamoDB layer: conversations, messages, idempotency records and the ChatUserQueue map.

Every write that must not happen twice is a conditional write, so concurrent requests race in
DynamoDB, where exactly one wins, rather than in this process.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from semichat.aws.batches import batch_write
from semichat.aws.tables import CONVERSATIONS, IDEMPOTENCY, MESSAGES, USER_QUEUES, table_names

_ser = TypeSerializer()
_de = TypeDeserializer()


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in values.items() if v is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class Message:
    message_id: str
    conversation_id: str
    sender_id: str
    text: str
    created_at: str

    @property
    def sort_key(self) -> str:
        return f"{self.created_at}#{self.message_id}"

    def to_json(self) -> dict[str, str]:
        return {
            "messageId": self.message_id,
            "conversationId": self.conversation_id,
            "senderId": self.sender_id,
            "text": self.text,
            "createdAt": self.created_at,
        }


@dataclass(frozen=True)
class IdempotencyRecord:
    idempotency_id: str
    message_id: str
    conversation_id: str
    text_hash: str
    created_at: str
    notified: bool
    fanout_lease_until_ms: int


class InvalidCursor(ValueError):
    pass


def encode_cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": sort_key}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)["k"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidCursor("cursor is not one this server issued") from exc
    if not isinstance(value, str) or "#" not in value:
        raise InvalidCursor("cursor is not one this server issued")
    return value


def idempotency_record(
    message: Message, idempotency_id: str, text_hash: str, lease_until_ms: int, ttl: int
) -> dict[str, Any]:
    """A send's idempotency record as first stored: not yet notified, its fan-out leased."""
    return {
        "idempotencyId": idempotency_id,
        "messageId": message.message_id,
        "conversationId": message.conversation_id,
        "textHash": text_hash,
        "createdAt": message.created_at,
        "notified": False,
        "fanoutLeaseUntilMs": lease_until_ms,
        "expiresAt": ttl,
    }


# Requests of a BatchWriteItem of idempotency records, its retries of unprocessed items included.
BATCH_WRITE_ATTEMPTS = 6


class ChatStore:
    def __init__(self, dynamodb: Any, table_prefix: str) -> None:
        self._db = dynamodb
        self._tables = table_names(table_prefix)
        self.table_prefix = table_prefix

    @property
    def dynamodb(self) -> Any:
        """The client, for other DynamoDB layers of the same tables (the connection registry)."""
        return self._db

    # -- conversations -------------------------------------------------------------------------

    async def get_participants(self, conversation_id: str) -> set[str] | None:
        resp = await self._db.get_item(
            TableName=self._tables[CONVERSATIONS],
            Key=_item({"conversationId": conversation_id}),
            ConsistentRead=True,
        )
        if "Item" not in resp:
            return None
        return set(_plain(resp["Item"]).get("participants", set()))

    async def create_conversation(
        self, conversation_id: str, participants: set[str], created_at: str
    ) -> None:
        await self._db.put_item(
            TableName=self._tables[CONVERSATIONS],
            Item=_item(
                {
                    "conversationId": conversation_id,
                    "participants": participants,
                    "createdAt": created_at,
                }
            ),
            ConditionExpression="attribute_not_exists(conversationId)",
        )

    async def join_conversation(
        self, conversation_id: str, users: set[str], created_at: str
    ) -> set[str]:
        """Add users to a conversation, creating it if needed, in one atomic update."""
        resp = await self._db.update_item(
            TableName=self._tables[CONVERSATIONS],
            Key=_item({"conversationId": conversation_id}),
            UpdateExpression="ADD participants :u SET createdAt = if_not_exists(createdAt, :c)",
            ExpressionAttributeValues=_item({":u": users, ":c": created_at}),
            ReturnValues="ALL_NEW",
        )
        return set(_plain(resp["Attributes"])["participants"])

    # -- messages and idempotency ----------------------------------------------------------------

    async def store_message(
        self, message: Message, record: dict[str, Any]
    ) -> IdempotencyRecord | None:
        """Store the message and its idempotency record (`idempotency_record`) together, or
        neither.

        Returns None when stored, or the record that already holds this key.
        """
        # The transaction first, the record only when its condition fails: a first attempt (every
        # send but the rare retry) then costs one request, not a read and a transaction. At 100
        # chatting users that read waited 133 ms (median) at the busy embedded backend. The read
        # was once taken first to spare moto's rollback, which restored whole tables and so
        # erased other sends' messages; the embedded backend now restores the transaction's own
        # items alone (`semichat/emulator/patches/core.py`).
        idempotency_id = record["idempotencyId"]
        try:
            await self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._tables[IDEMPOTENCY],
                            "Item": _item(record),
                            "ConditionExpression": "attribute_not_exists(idempotencyId)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._tables[MESSAGES],
                            "Item": _item(
                                {
                                    "conversationId": message.conversation_id,
                                    "sortKey": message.sort_key,
                                    "messageId": message.message_id,
                                    "senderId": message.sender_id,
                                    "text": message.text,
                                    "createdAt": message.created_at,
                                }
                            ),
                            "ConditionExpression": "attribute_not_exists(sortKey)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if _code(exc) not in {"TransactionCanceledException", "TransactionConflictException"}:
                raise
            existing = await self.get_idempotency(idempotency_id)
            if existing is None:
                raise
            return existing
        return None

    async def get_idempotency(self, idempotency_id: str) -> IdempotencyRecord | None:
        resp = await self._db.get_item(
            TableName=self._tables[IDEMPOTENCY],
            Key=_item({"idempotencyId": idempotency_id}),
            ConsistentRead=True,
        )
        if "Item" not in resp:
            return None
        r = _plain(resp["Item"])
        return IdempotencyRecord(
            idempotency_id=r["idempotencyId"],
            message_id=r["messageId"],
            conversation_id=r["conversationId"],
            text_hash=r["textHash"],
            created_at=r["createdAt"],
            notified=bool(r.get("notified", False)),
            fanout_lease_until_ms=int(r.get("fanoutLeaseUntilMs", 0)),
        )

    async def claim_fanout(self, idempotency_id: str, now_ms: int, lease_until_ms: int) -> bool:
        """Take over the fan-out of a stored but unannounced message, if its lease expired."""
        try:
            await self._db.update_item(
                TableName=self._tables[IDEMPOTENCY],
                Key=_item({"idempotencyId": idempotency_id}),
                UpdateExpression="SET fanoutLeaseUntilMs = :lease",
                ConditionExpression="notified = :false AND fanoutLeaseUntilMs < :now",
                ExpressionAttributeValues=_item(
                    {":lease": lease_until_ms, ":false": False, ":now": now_ms}
                ),
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def release_fanout(self, idempotency_id: str) -> None:
        """Give up the fan-out lease so that an immediate retry may take it over."""
        await self._db.update_item(
            TableName=self._tables[IDEMPOTENCY],
            Key=_item({"idempotencyId": idempotency_id}),
            UpdateExpression="SET fanoutLeaseUntilMs = :zero",
            ExpressionAttributeValues=_item({":zero": 0}),
        )

    async def put_records(self, records: list[dict[str, Any]]) -> None:
        """Write idempotency records whole, several in one request (`marks.NotifiedMarks`)."""
        requests = [{"PutRequest": {"Item": _item(r)}} for r in records]
        left = await batch_write(
            self._db, self._tables[IDEMPOTENCY], requests, BATCH_WRITE_ATTEMPTS
        )
        if left:
            # Throttled, as far as the client can tell: a 503 it may retry (`errors.py`).
            raise ClientError(
                {
                    "Error": {
                        "Code": "ThrottlingException",
                        "Message": f"{left} idempotency records left unprocessed",
                    }
                },
                "BatchWriteItem",
            )

    async def mark_notified(self, idempotency_id: str) -> None:
        await self._db.update_item(
            TableName=self._tables[IDEMPOTENCY],
            Key=_item({"idempotencyId": idempotency_id}),
            UpdateExpression="SET notified = :true",
            ExpressionAttributeValues=_item({":true": True}),
        )

    async def history(
        self, conversation_id: str, limit: int, before: str | None
    ) -> tuple[list[Message], str | None]:
        """The newest `limit` messages older than `before` (a sort key), oldest first.

        Returns the page and the sort key to continue from, or None when nothing older exists.
        """
        kwargs: dict[str, Any] = {
            "TableName": self._tables[MESSAGES],
            "KeyConditionExpression": "conversationId = :c",
            "ExpressionAttributeValues": _item({":c": conversation_id}),
            "ScanIndexForward": False,
            # One extra item tells whether an older page exists without a second round trip.
            "Limit": limit + 1,
            "ConsistentRead": True,
        }
        if before is not None:
            kwargs["ExclusiveStartKey"] = _item(
                {"conversationId": conversation_id, "sortKey": before}
            )
        resp = await self._db.query(**kwargs)
        items = [_plain(i) for i in resp.get("Items", [])]
        more = len(items) > limit
        items = items[:limit]
        messages = [
            Message(
                message_id=i["messageId"],
                conversation_id=i["conversationId"],
                sender_id=i["senderId"],
                text=i["text"],
                created_at=i["createdAt"],
            )
            for i in reversed(items)
        ]
        return messages, (messages[0].sort_key if more and messages else None)

    # -- ChatUserQueue ---------------------------------------------------------------------------

    async def get_queue_url(self, user_id: str) -> str | None:
        resp = await self._db.get_item(
            TableName=self._tables[USER_QUEUES],
            Key=_item({"userId": user_id}),
            ConsistentRead=True,
        )
        return _plain(resp["Item"])["queueUrl"] if "Item" in resp else None

    async def put_queue_url(self, user_id: str, queue_url: str, created_at: str) -> None:
        await self._db.put_item(
            TableName=self._tables[USER_QUEUES],
            Item=_item({"userId": user_id, "queueUrl": queue_url, "createdAt": created_at}),
        )
