"""Reading SSE events from an aiohttp client response in tests."""

from __future__ import annotations

import json
from typing import Any

from semichat.harness.sse_parser import SseEvent, SseParser


async def next_events(resp: Any, count: int, event: str = "message") -> list[SseEvent]:
    """Read until `count` events of type `event` have arrived; the caller bounds the time."""
    parser = SseParser()
    found: list[SseEvent] = []
    async for line in resp.content:
        parsed = parser.feed(line)
        if parsed is not None and parsed.event == event:
            found.append(parsed)
            if len(found) >= count:
                break
    return found


def data(event: SseEvent) -> dict[str, Any]:
    return json.loads(event.data)
