"""The stream's acknowledgement rule, with fakes: acknowledge only what was written."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import make_mocked_request
from aiohttp.web import Application

from semichat.server.appkeys import SETTINGS
from semichat.server.logs import REQUEST_LOG
from semichat.server.routing import Delivery, Notification
from semichat.server.stream import StreamProgress, _pump
from semichat.settings import Settings


class FakeSubscription:
    def __init__(self, batches: list[list[Delivery]]) -> None:
        self.batches = batches
        self.acked: list[str] = []
        self.released: list[str] = []

    async def receive(self) -> list[Delivery]:
        return self.batches.pop(0) if self.batches else []

    async def acknowledge(self, delivery: Delivery) -> None:
        self.acked.append(delivery.notification.message_id)

    async def release(self, delivery: Delivery) -> None:
        self.released.append(delivery.notification.message_id)


class FakeResponse:
    """Accepts `ok_writes` events, then behaves like a peer that went away."""

    def __init__(self, ok_writes: int) -> None:
        self.ok_writes = ok_writes
        self.sent: list[str] = []

    async def send(self, data: str, id: str, event: str) -> None:
        if len(self.sent) >= self.ok_writes:
            raise ConnectionResetError("peer gone")
        self.sent.append(id)

    async def wait(self) -> None:
        import asyncio

        await asyncio.Event().wait()


def _delivery(i: int) -> Delivery:
    return Delivery(Notification(f"m{i}", "c"), receipt=f"r{i}")


def _request() -> Any:
    app = Application()
    app[SETTINGS] = Settings()
    request = make_mocked_request("GET", "/api/chat/stream", app=app)
    request[REQUEST_LOG] = {}
    return request


async def test_unwritten_notifications_are_released_not_acknowledged() -> None:
    sub = FakeSubscription([[_delivery(1), _delivery(2), _delivery(3)]])
    resp = FakeResponse(ok_writes=1)
    progress = StreamProgress()
    await _pump(_request(), resp, sub, progress)  # type: ignore[arg-type]
    assert (progress.delivered, progress.reason) == (1, "write failed")
    assert sub.acked == ["m1"]
    assert sub.released == ["m2", "m3"]


async def test_written_notifications_are_acknowledged_in_order() -> None:
    sub = FakeSubscription([[_delivery(1)], [], [_delivery(2), _delivery(3)]])
    resp = FakeResponse(ok_writes=3)
    settings = Settings(stream_max_seconds=0.2)
    request = _request()
    request.app[SETTINGS] = settings
    progress = StreamProgress()
    await _pump(request, resp, sub, progress)  # type: ignore[arg-type]
    assert (progress.delivered, progress.reason) == (3, "max lifetime")
    assert resp.sent == sub.acked == ["m1", "m2", "m3"]
