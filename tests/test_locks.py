"""Per-key locks: one holder per key at a time, other keys unaffected, nothing kept after."""

from __future__ import annotations

import asyncio

from semichat.server.locks import KeyedLocks


async def test_one_holder_per_key_and_keys_are_forgotten() -> None:
    locks = KeyedLocks()
    inside: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}

    async def work(key: str) -> None:
        async with locks.hold(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            await asyncio.sleep(0.01)
            inside[key] -= 1

    await asyncio.gather(*(work("a") for _ in range(5)), *(work("b") for _ in range(5)))
    assert most == {"a": 1, "b": 1}
    assert len(locks) == 0


async def test_different_keys_run_together() -> None:
    locks = KeyedLocks()
    async with locks.hold("a"):
        await asyncio.wait_for(_enter(locks, "b"), 1)


async def _enter(locks: KeyedLocks, key: str) -> None:
    async with locks.hold(key):
        pass
