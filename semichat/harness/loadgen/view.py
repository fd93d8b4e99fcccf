"""What a user's chat window holds: the widget's algorithm, for simulated users.

On each notification (and on every reconnect) the client refetches the newest few messages of
history, paging back until it reaches what it shows and every message a notification named; it
shows each message once, de-duplicated by messageId, in the server's order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

# Simulated users write "<user> #<seq> [<idempotency key>]", so whoever sees a message can name
# the send it came from even when that send's response was lost (its outcome "unknown").
# widget.js: the first read takes 50; each later one a page of 5, then pages of 20, 40, 80, 160
# and 200 (the server's maximum) back to a known message and to every notified one, at most 20
# pages, so a long gap (300 messages) is read in 5 (`tests/test_retry_matches_widget.py` reads
# them out of widget.js).
INITIAL_HISTORY = 50
CATCH_UP_FIRST_PAGE = 5
CATCH_UP_PAGE = 20
CATCH_UP_MAX_PAGE = 200
MAX_CATCH_UP_PAGES = 20
_KEY_IN_TEXT = re.compile(r"\[([0-9A-Za-z_-]{1,128})\]\s*$")


def catch_up_limit(n: int) -> int:
    """The n-th read of a catch-up (widget.js `catchUpLimit`)."""
    return CATCH_UP_FIRST_PAGE if n == 0 else min(CATCH_UP_MAX_PAGE, CATCH_UP_PAGE * 2 ** (n - 1))


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


# A history read: (limit, cursor) to the response's JSON, or None when it was refused.
Fetch = Callable[[int, "str | None"], "Mapping[str, Any] | None"]


def catch_up(
    fetch: Fetch,
    view: ChatView,
    loaded: bool,
    show: Callable[[list[Any]], object],
    wanted: set[str] | None = None,
) -> bool:
    """widget.js `HistorySync.catchUp`: the first read takes the newest INITIAL_HISTORY; later
    ones take `catch_up_limit(n)` (5, 20, 40, ... 200), going back until a page reaches a
    message `view` already shows and every id `wanted` held at the start is found (at most
    MAX_CATCH_UP_PAGES). `wanted` holds the notified ids not shown yet: a send that commits late
    sorts behind messages already shown, beyond the first page. The pages are shown together,
    oldest first, once the last is read (`show` must fold them into `view`): shown one by one, a
    first page of newer messages would stand above a gap its next page then fills (a read that
    stalled 3 s in a 100-user run: 5 pairs of the user view reordered). The ids held at the start
    then leave `wanted`, found or not; those added meanwhile stay for the next call, and a
    refused read shows what was read and leaves all of them. Returns whether the first read is
    done."""
    sought = set(wanted or ())
    found: list[Any] = []
    cursor = None
    try:
        for n in range(MAX_CATCH_UP_PAGES if loaded else 1):
            limit = catch_up_limit(n) if loaded else INITIAL_HISTORY
            page = fetch(limit, cursor)
            if page is None:
                return loaded
            messages = list(page["messages"])
            reached_known = any(str(m.get("messageId")) in view for m in messages)
            found = messages + found
            ids = {str(m.get("messageId")) for m in found}
            cursor = page.get("nextCursor")
            if (reached_known and all(m in view or m in ids for m in sought)) or not cursor:
                break
    finally:
        if found:
            show(found)
    if wanted is not None:
        wanted.difference_update(sought)
    return True


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
