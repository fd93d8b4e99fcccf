"""The chat domain's own state, without a backend: the participants it keeps in process and
the time it stamps on a new conversation (mutants of `chat.py` that the HTTP tests missed)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from semichat.server import chat
from semichat.server.chat import ChatService
from semichat.server.errors import Forbidden
from semichat.settings import Settings


class _Store:
    def __init__(self, conversations: dict[str, set[str]]) -> None:
        self.conversations = conversations
        self.reads: Counter[str] = Counter()
        self.created: list[tuple[str, set[str], str]] = []

    async def get_participants(self, conversation_id: str) -> set[str] | None:
        self.reads[conversation_id] += 1
        members = self.conversations.get(conversation_id)
        return set(members) if members is not None else None

    async def create_conversation(self, conversation_id: str, members: set[str], at: str) -> None:
        self.created.append((conversation_id, members, at))


def _service(store: _Store, clock: Any = lambda: 0.0) -> ChatService:
    return ChatService(store, router=None, settings=Settings(), clock=clock)  # type: ignore[arg-type]


async def test_participants_are_read_once_and_a_full_cache_forgets_the_oldest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chat, "MEMBERS_CACHED", 3)
    store = _Store({f"c{i}": {"alice", "bob"} for i in range(4)})
    service = _service(store)
    for _ in range(3):
        assert await service.participants("alice", "c0") == {"alice", "bob"}
    assert store.reads["c0"] == 1
    # Kept members still decide who may read.
    with pytest.raises(Forbidden):
        await service.participants("mallory", "c0")
    assert store.reads["c0"] == 1
    for conversation in ("c1", "c2", "c3"):  # the fourth pushes out the oldest, c0
        await service.participants("bob", conversation)
    await service.participants("bob", "c1")
    assert store.reads["c1"] == 1
    await service.participants("bob", "c0")
    assert store.reads["c0"] == 2


async def test_a_conversation_is_created_at_the_services_clock() -> None:
    store = _Store({})
    service = _service(store, clock=lambda: 86_400.25)
    conversation_id, members = await service.create_conversation("alice", ["bob", "alice"])
    assert members == ["alice", "bob"]
    assert store.created == [(conversation_id, {"alice", "bob"}, "1970-01-02T00:00:00.250000Z")]
