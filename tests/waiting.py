"""Waiting on conditions, not clocks: poll a predicate until it holds or a deadline passes.

A fixed sleep before an assertion is either too short on a loaded machine or wasted time on an
idle one; polling what the assertion is about (metrics, events, backend state) is neither.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

POLL_INTERVAL_S = 0.05


async def wait_for(
    predicate: Callable[[], Awaitable[T] | T],
    within: float,
    what: str,
    interval: float = POLL_INTERVAL_S,
) -> T:
    """Call `predicate` (sync or async) until it returns something truthy, and return that.

    Fails with `what` and the last value seen if `within` seconds pass first.
    """
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"no {what} within {within:g} s; last seen: {value!r}")
        await asyncio.sleep(interval)
