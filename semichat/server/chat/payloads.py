"""Parsing client input into commands: every rule a request must meet, and its 4xx."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from semichat.server.errors import BadRequest, PayloadTooLarge
from semichat.server.identity import validate_user_id

# `@` because a support conversation is named after its user (`support:alice@example.com`).
CONVERSATION_ID_RE = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")
MAX_PARTICIPANTS = 100


@dataclass(frozen=True)
class SendCommand:
    conversation_id: str
    text: str
    idempotency_key: str


@dataclass(frozen=True)
class HistoryQuery:
    conversation_id: str
    limit: int
    cursor: str | None


def _require_object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def parse_conversation_id(value: Any) -> str:
    if not isinstance(value, str) or not CONVERSATION_ID_RE.fullmatch(value):
        raise BadRequest("conversationId must be 1 to 128 characters of [A-Za-z0-9_.:@-]")
    return value


def parse_send(body: Any, header_key: str | None, max_text_chars: int) -> SendCommand:
    data = _require_object(body)
    conversation_id = parse_conversation_id(data.get("conversationId"))
    text = data.get("text")
    if not isinstance(text, str):
        raise BadRequest("text must be a string")
    if not text.strip():
        raise BadRequest("text must not be empty")
    if len(text) > max_text_chars:
        raise PayloadTooLarge(f"text is longer than {max_text_chars} characters")
    key = data.get("idempotencyKey", header_key)
    if key is None:
        raise BadRequest("idempotencyKey is required (in the body or the Idempotency-Key header)")
    if not isinstance(key, str) or not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise BadRequest("idempotencyKey must be 1 to 255 visible ASCII characters")
    if header_key is not None and header_key != key:
        raise BadRequest("idempotencyKey in the body and the Idempotency-Key header differ")
    return SendCommand(conversation_id=conversation_id, text=text, idempotency_key=key)


def parse_participants(body: Any) -> list[str]:
    data = _require_object(body)
    participants = data.get("participants")
    if not isinstance(participants, list):
        raise BadRequest("participants must be a list of user ids")
    if len(participants) > MAX_PARTICIPANTS:
        raise BadRequest(f"a conversation has at most {MAX_PARTICIPANTS} participants")
    return [validate_user_id(p, "each participant") for p in participants]


def parse_history(query: Mapping[str, str], default_limit: int, max_limit: int) -> HistoryQuery:
    conversation_id = parse_conversation_id(query.get("conversationId"))
    raw_limit = query.get("limit")
    if raw_limit is None or raw_limit == "":
        limit = default_limit
    else:
        if not raw_limit.isdigit():
            raise BadRequest("limit must be a whole number")
        limit = int(raw_limit)
        if not 1 <= limit <= max_limit:
            raise BadRequest(f"limit must be between 1 and {max_limit}")
    cursor = query.get("cursor") or None
    if cursor is not None and len(cursor) > 1024:
        raise BadRequest("cursor is not one this server issued")
    return HistoryQuery(conversation_id=conversation_id, limit=limit, cursor=cursor)
