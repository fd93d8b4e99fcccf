"""The embedded SQS's receive, delete and visibility changes run under their queue's lock
(`semichat/emulator/patches/queue_locks.py`), and a long poll's wait lets go of it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from moto.sqs.models import Queue, SQSBackend

from semichat.emulator import patches

from .waiting import wait_for

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture
def backend() -> SQSBackend:
    patches.apply()
    sqs = SQSBackend(REGION, ACCOUNT)
    sqs.create_queue("q")
    return sqs


def test_receive_delete_and_release_hold_the_queue_lock(
    backend: SQSBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = backend.get_queue("q")
    held: list[tuple[str, bool]] = []

    def watching(name: str) -> Any:
        original = getattr(Queue, name)

        def watched(self: Queue, *args: Any, **kwargs: Any) -> Any:
            held.append((name, self._messages_lock._is_owned()))  # type: ignore[attr-defined]
            return original(self, *args, **kwargs)

        return watched

    monkeypatch.setattr(Queue, "delete_message", watching("delete_message"))
    monkeypatch.setattr(Queue, "pending_messages", property(lambda q: _seen(q, held)))
    for body in ("a", "b"):
        backend.send_message("q", body)
    first, second = backend.receive_message("q", 2, 0, 30)
    backend.change_message_visibility("q", second.receipt_handle, 0)
    backend.delete_message("q", first.receipt_handle)
    assert held and all(owned for _, owned in held), held
    assert {name for name, _ in held} == {"pending", "delete_message"}
    assert not queue._messages_lock._is_owned()  # type: ignore[attr-defined]


def _seen(queue: Queue, held: list[tuple[str, bool]]) -> set[Any]:
    held.append(("pending", queue._messages_lock._is_owned()))  # type: ignore[attr-defined]
    return queue._pending_messages


def test_a_waiting_long_poll_lets_a_delete_through(backend: SQSBackend) -> None:
    backend.send_message("q", "in flight")
    [taken] = backend.receive_message("q", 1, 0, 30)
    answered: list[Any] = []
    poll = threading.Thread(target=lambda: answered.append(backend.receive_message("q", 1, 20, 30)))
    poll.start()
    # Once the poll waits on the queue's condition, the delete must get the lock meanwhile,
    # and the message sent after it wakes the poll.
    condition = backend.get_queue("q")._messages_lock
    asyncio.run(wait_for(lambda: condition._waiters, 30, "the poll waiting"))  # type: ignore[attr-defined]
    backend.delete_message("q", taken.receipt_handle)
    backend.send_message("q", "wake")
    poll.join(timeout=30)
    assert [[m.body for m in answer] for answer in answered] == [["wake"]]
