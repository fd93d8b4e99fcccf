"""What a user's chat window holds: the widget's algorithm, for simulated users.

On each notification (and on every reconnect) the client refetches the newest page of history
and shows each message once, de-duplicated by messageId, in the server's order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


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
