"""The chat domain's own state, without a backend: the participants it keeps in process, the
time it stamps on a new conversation, and the sends it lets through at once (mutants of
`chat.py` that the HTTP tests missed)."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from semichat.server.chat import service as chat
from semichat.server.chat.payloads import SendCommand
from semichat.server.chat.service import ChatService
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

    async def put_records(self, records: list[Any]) -> None:
        pass


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


class _SlowStore(_Store):
    """A participants read that waits until `answer` is set; `fail` first raises instead."""

    def __init__(self, fail: int = 0) -> None:
        super().__init__({"c": {"alice", "bob", "carol"}})
        self.answer = asyncio.Event()
        self.fail = fail

    async def get_participants(self, conversation_id: str) -> set[str] | None:
        self.reads[conversation_id] += 1
        await self.answer.wait()
        if self.fail:
            self.fail -= 1
            raise RuntimeError("throttled")
        return set(self.conversations[conversation_id])


async def test_requests_that_miss_together_share_one_participants_read() -> None:
    store = _SlowStore()
    service = _service(store)
    asking = [
        asyncio.create_task(service.participants(user, "c")) for user in ("alice", "bob", "carol")
    ]
    await asyncio.sleep(0)  # every request has missed the cache and waits
    store.answer.set()
    assert [await task for task in asking] == [{"alice", "bob", "carol"}] * 3
    assert store.reads["c"] == 1


async def test_a_failed_participants_read_is_not_shared_with_the_requests_that_waited() -> None:
    store = _SlowStore(fail=1)
    service = _service(store)
    first = asyncio.create_task(service.participants("alice", "c"))
    second = asyncio.create_task(service.participants("bob", "c"))
    await asyncio.sleep(0)
    store.answer.set()
    with pytest.raises(RuntimeError):
        await first
    assert await second == {"alice", "bob", "carol"}  # it read again, once the first failed
    assert store.reads["c"] == 2


async def test_a_conversation_is_created_at_the_services_clock() -> None:
    store = _Store({})
    service = _service(store, clock=lambda: 86_400.25)
    conversation_id, members = await service.create_conversation("alice", ["bob", "alice"])
    assert members == ["alice", "bob"]
    assert store.created == [(conversation_id, {"alice", "bob"}, "1970-01-02T00:00:00.250000Z")]


class _HeldStore(_Store):
    """Stores instantly, except a send of the idempotency id `held`: it waits inside the store
    until `release` is set."""

    def __init__(self, held: str) -> None:
        super().__init__({"c": {"alice", "bob"}})
        self.held = held
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.stored: list[str] = []

    async def store_message(self, message: Any, record: dict[str, Any]) -> None:
        idempotency_id = record["idempotencyId"]
        if idempotency_id == self.held:
            self.entered.set()
            await self.release.wait()  # the test sets it in a `finally`
        self.stored.append(idempotency_id)

    async def mark_notified(self, idempotency_id: str) -> None:
        pass


async def test_sends_with_different_keys_do_not_wait_for_each_other() -> None:
    """Only retries of one key queue in process: a send stuck in the store holds up no other."""
    store = _HeldStore("alice#slow")
    published: list[str] = []

    async def publish(recipients: list[str], notification: Any) -> None:
        published.append(notification.message_id)

    router = SimpleNamespace(publish=publish)
    service = ChatService(store, router, Settings(), clock=lambda: 0.0)  # type: ignore[arg-type]
    slow = asyncio.create_task(service.send("alice", SendCommand("c", "slow", "slow")))
    try:
        await asyncio.wait_for(store.entered.wait(), 10)
        quick = await asyncio.wait_for(
            service.send("alice", SendCommand("c", "quick", "quick")), 10
        )
        assert not slow.done()
        assert store.stored == ["alice#quick"] and published == [quick.message_id]
    finally:
        store.release.set()
    first = await asyncio.wait_for(slow, 10)
    assert store.stored == ["alice#quick", "alice#slow"]
    assert published == [quick.message_id, first.message_id]
