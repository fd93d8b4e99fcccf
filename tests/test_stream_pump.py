"""The stream's acknowledgement rule, with fakes: acknowledge only what was written, and settle
(delete or release) everything received, whatever ends the stream."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import make_mocked_request
from aiohttp.web import Application

from semichat.server.api.appkeys import COUNTERS, NEMESIS, ORPHANS, SETTINGS
from semichat.server.api.logs import REQUEST_LOG
from semichat.server.api.stream import StreamProgress, _pump
from semichat.server.delivery.orphans import OrphanedPolls
from semichat.server.delivery.routing import Delivery, Notification
from semichat.server.faults.nemesis import Nemesis
from semichat.server.metrics import SqsCounters
from semichat.settings import Settings


class FakeSubscription:
    ordered = False

    def __init__(self, batches: list[list[Delivery]], ack_gate: asyncio.Event | None = None):
        self.batches = batches
        self.acked: list[str] = []
        self.released: list[str] = []
        self.ack_gate = ack_gate
        self.acking = asyncio.Event()

    async def receive(self) -> list[Delivery]:
        if not self.batches:
            await asyncio.sleep(0.01)  # an empty long poll takes a while
        return self.batches.pop(0) if self.batches else []

    async def acknowledge(self, delivery: Delivery) -> None:
        self.acking.set()
        if self.ack_gate is not None:
            await self.ack_gate.wait()
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
        await asyncio.Event().wait()


class StalledResponse(FakeResponse):
    """Accepts `ok_writes` events, then blocks on the next write, as a full socket buffer does."""

    def __init__(self, ok_writes: int) -> None:
        super().__init__(ok_writes)
        self.stalled = asyncio.Event()

    async def send(self, data: str, id: str, event: str) -> None:
        if len(self.sent) >= self.ok_writes:
            self.stalled.set()
            await asyncio.Event().wait()
        self.sent.append(id)


def _delivery(i: int) -> Delivery:
    return Delivery(Notification(f"m{i}", "c"), receipt=f"r{i}")


def _request() -> Any:
    app = Application()
    app[SETTINGS] = Settings()
    app[COUNTERS] = SqsCounters()
    app[ORPHANS] = OrphanedPolls(app[COUNTERS])
    app[NEMESIS] = Nemesis.from_text("")
    request = make_mocked_request("GET", "/api/chat/stream", app=app)
    request[REQUEST_LOG] = {}
    return request


async def test_unwritten_notifications_are_released_not_acknowledged() -> None:
    sub = FakeSubscription([[_delivery(1), _delivery(2), _delivery(3)]])
    resp = FakeResponse(ok_writes=1)
    progress = StreamProgress()
    request = _request()
    await _pump(request, resp, sub, progress)  # type: ignore[arg-type]
    await _settled(request)
    assert (progress.delivered, progress.reason) == (1, "write failed")
    assert sub.acked == ["m1"]
    assert sub.released == ["m2", "m3"]


async def _settled(request: Any) -> None:
    """Wait until the stream's background settlements (releases, acknowledgements) are done."""
    await asyncio.wait_for(request.app[ORPHANS].settled(), 5)


async def test_a_stream_cancelled_mid_batch_releases_the_rest_of_its_batch() -> None:
    """The loss path the reconnect storm showed: the client goes away (the handler is
    cancelled) while the stream writes the second of three notifications. Nothing may stay
    invisible until the visibility timeout: the first is deleted, the other two released."""
    sub = FakeSubscription([[_delivery(1), _delivery(2), _delivery(3)]])
    resp = StalledResponse(ok_writes=1)
    request = _request()
    pump = asyncio.ensure_future(_pump(request, resp, sub, StreamProgress()))  # type: ignore[arg-type]
    await asyncio.wait_for(resp.stalled.wait(), 5)
    pump.cancel()
    await asyncio.gather(pump, return_exceptions=True)
    await _settled(request)
    assert sub.acked == ["m1"]
    assert sub.released == ["m2", "m3"]


async def test_a_slow_acknowledgement_holds_back_neither_the_next_notifications_nor_itself() -> (
    None
):
    """A delete that waits (botocore backing off a throttled DeleteMessage) does not hold back
    the notifications behind it: they are written meanwhile. Cancelling the stream then
    abandons none of the deletes under way."""
    gate = asyncio.Event()
    sub = FakeSubscription([[_delivery(1), _delivery(2), _delivery(3)]], ack_gate=gate)
    resp = FakeResponse(3)
    request = _request()
    pump = asyncio.ensure_future(_pump(request, resp, sub, StreamProgress()))  # type: ignore[arg-type]
    for _ in range(500):
        if len(resp.sent) == 3:
            break
        await asyncio.sleep(0.01)
    assert resp.sent == ["m1", "m2", "m3"] and sub.acked == []
    pump.cancel()
    await asyncio.gather(pump, return_exceptions=True)
    gate.set()
    await _settled(request)
    assert sub.acked == ["m1", "m2", "m3"]
    assert sub.released == []
    assert request.app[COUNTERS].unsettled == 0


class FailingSubscription(FakeSubscription):
    """SQS refuses deletes and then releases too."""

    def __init__(self, batches: list[list[Delivery]], release_fails: bool) -> None:
        super().__init__(batches)
        self.release_fails = release_fails

    async def acknowledge(self, delivery: Delivery) -> None:
        raise RuntimeError("DeleteMessage failed")

    async def release(self, delivery: Delivery) -> None:
        if self.release_fails:
            raise RuntimeError("ChangeMessageVisibility failed")
        await super().release(delivery)


async def test_a_failed_acknowledgement_is_released_and_a_failed_release_counted() -> None:
    for release_fails, released, unsettled in ((False, ["m1", "m2"], 0), (True, [], 2)):
        sub = FailingSubscription([[_delivery(1), _delivery(2)]], release_fails)
        request = _request()
        request.app[SETTINGS] = Settings(stream_max_seconds=0.1)
        await _pump(request, FakeResponse(2), sub, StreamProgress())  # type: ignore[arg-type]
        await _settled(request)
        assert (sub.released, request.app[COUNTERS].unsettled) == (released, unsettled)


async def test_written_notifications_are_acknowledged_in_order() -> None:
    sub = FakeSubscription([[_delivery(1)], [], [_delivery(2), _delivery(3)]])
    resp = FakeResponse(ok_writes=3)
    settings = Settings(stream_max_seconds=0.2)
    request = _request()
    request.app[SETTINGS] = settings
    progress = StreamProgress()
    await _pump(request, resp, sub, progress)  # type: ignore[arg-type]
    await _settled(request)
    assert (progress.delivered, progress.reason) == (3, "max lifetime")
    assert resp.sent == sub.acked == ["m1", "m2", "m3"]


async def test_an_orphaned_poll_hands_its_notifications_to_the_users_newer_stream() -> None:
    """A poll left by a closed stream returns with a notification: the user's open stream
    writes it and acknowledges it through the orphan's subscription, instead of releasing it
    to the queue's next waiting poll (often another orphan, in a reconnect storm)."""
    request = _request()
    request.app[SETTINGS] = Settings(stream_max_seconds=0.5)
    live = FakeSubscription([[_delivery(1)]])
    orphan = FakeSubscription([])
    resp = FakeResponse(ok_writes=5)
    pump = asyncio.ensure_future(_pump(request, resp, live, StreamProgress(), "u"))  # type: ignore[arg-type]
    left_behind: asyncio.Future[list[Delivery]] = asyncio.get_running_loop().create_future()
    request.app[ORPHANS].adopt(left_behind, orphan, "u")
    left_behind.set_result([_delivery(5), _delivery(6)])
    await asyncio.wait_for(pump, 5)
    await _settled(request)
    assert sorted(resp.sent) == ["m1", "m5", "m6"]
    assert (live.acked, orphan.acked, orphan.released) == (["m1"], ["m5", "m6"], [])
    assert request.app[COUNTERS].orphan_handoffs == 2
