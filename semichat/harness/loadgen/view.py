"""What a user's chat window holds: the widget's algorithm, for simulated users.

On each notification (and on every reconnect) the client refetches the newest page of history
and shows each message once, de-duplicated by messageId, in the server's order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

# Simulated users write "<user> #<seq> [<idempotency key>]", so whoever sees a message can name
# the send it came from even when that send's response was lost (its outcome "unknown").
_KEY_IN_TEXT = re.compile(r"\[([0-9A-Za-z_-]{1,128})\]\s*$")


def message_text(user_id: str, seq: int, key: str) -> str:
    return f"{user_id} #{seq} [{key}]"


def idempotency_key(message: Mapping[str, Any]) -> str | None:
    """The send's key from a history message's text, or None if the text carries none."""
    text = message.get("text")
    if not isinstance(text, str):
        return None
    match = _KEY_IN_TEXT.search(text)
    return match.group(1) if match else None


class ChatView:
    def __init__(self) -> None:
        self._seen: set[str] = set()
        self.messages: list[str] = []

    def merge(self, page: Iterable[Mapping[str, Any]]) -> list[str]:
        """Fold a history page in; return the ids that were not shown before, in page order."""
        fresh = []
        for message in page:
            message_id = str(message["messageId"])
            if message_id not in self._seen:
                self._seen.add(message_id)
                fresh.append(message_id)
        self.messages.extend(fresh)
        return fresh

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._seen

    def __len__(self) -> int:
        return len(self.messages)


class EventRecorder(Protocol):
    def record(self, type_: str, **fields: Any) -> dict[str, Any]: ...


def record_views(
    recorder: EventRecorder,
    view: ChatView,
    page: Iterable[Mapping[str, Any]],
    *,
    t: float,
    user: str,
    client: str,
    conversation_id: str,
) -> list[dict[str, Any]]:
    """Fold a refetched history page into `view` and record a `view` event for each message it
    shows for the first time; returns the recorded events.

    The key in each message's text names its send: the checker bridges the messageId to a send
    whose outcome was unknown, so that message's deliveries are "recovered".
    """
    page = list(page)
    keys = {str(m.get("messageId")): idempotency_key(m) for m in page}
    return [
        recorder.record(
            "view",
            t=t,
            user=user,
            client=client,
            conversationId=conversation_id,
            messageId=message_id,
            **({"idempotencyKey": key} if (key := keys.get(message_id)) else {}),
        )
        for message_id in view.merge(page)
    ]
