"""The SSE stream: long-poll the user's notifications, write each one, then acknowledge it.

Acknowledging only after the write means a stream that dies mid-write loses nothing: the
notification becomes visible again. Delivery is therefore at least once; clients de-duplicate
by message id. A client that goes away ends its stream at once (aiohttp cancels the handler
when run with `handler_cancellation=True`; otherwise the next heartbeat notices it); a long poll
still waiting then is left to finish, and what it received is released (`orphans.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from asyncio import FIRST_COMPLETED
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response
from botocore.exceptions import ClientError

from semichat.server.api.appkeys import (
    COUNTERS,
    GUARD,
    NEMESIS,
    ORPHANS,
    ROUTER,
    SETTINGS,
    STREAM_SLOTS,
)
from semichat.server.api.heartbeat import HeartbeatResponse
from semichat.server.api.logs import annotate, log_event
from semichat.server.delivery.orphans import Batch
from semichat.server.delivery.routing import Delivery, Subscription
from semichat.server.delivery.sqs import is_missing_queue
from semichat.server.faults import Nemesis

routes = web.RouteTableDef()

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
RECONNECT_HINT_MS = 1000
# A failed receive is retried after 0.2, 0.4, ... s, at most 5 s apart.
RECEIVE_BACKOFF_BASE_S = 0.2
RECEIVE_BACKOFF_CAP_S = 5.0


@routes.get("/api/chat/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    user = await request.app[GUARD].authenticate(request)
    stream_id = uuid.uuid4().hex[:12]
    annotate(request, userId=user, streamId=stream_id)
    # The slot is held until the stream ends, however it ends (a cancelled handler included).
    with request.app[STREAM_SLOTS].hold(user):
        return await _serve_stream(request, user, stream_id)


async def _serve_stream(request: web.Request, user: str, stream_id: str) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    counters = request.app[COUNTERS]
    # Subscribing first means a failure to reach the queue is a JSON error, not a broken stream.
    subscription = await request.app[ROUTER].subscribe(user)
    counters.open_streams += 1
    progress = StreamProgress()
    try:
        async with sse_response(
            request,
            headers=SSE_HEADERS,
            ping_interval=settings.heartbeat_seconds,
            response_cls=HeartbeatResponse,
        ) as resp:
            log_event(request, "stream connected")
            # The interval tells clients when silence means a dead stream (heartbeat.py).
            ready = {"streamId": stream_id, "heartbeatSeconds": settings.heartbeat_seconds}
            await resp.send(json.dumps(ready), event="ready", retry=RECONNECT_HINT_MS)
            stall = _schedule_stall(request, resp)
            try:
                await _pump(request, resp, subscription, progress, user)
            finally:
                if stall is not None:
                    stall.cancel()
        return resp
    finally:
        counters.open_streams -= 1
        # Shielded: a stream ended by its client's departure is being cancelled, and the
        # strategy's bookkeeping (the instance registry) must still finish.
        with contextlib.suppress(Exception):
            await asyncio.shield(subscription.close())
        log_event(
            request,
            "stream disconnected",
            reason=progress.reason,
            delivered=progress.delivered,
            receiveErrors=progress.receive_errors,
        )


@dataclass
class StreamProgress:
    """Kept outside `_pump` so that a cancelled handler still logs what its stream did."""

    delivered: int = 0
    receive_errors: int = 0
    reason: str = "client closed"


async def _pump(
    request: web.Request,
    resp: EventSourceResponse,
    subscription: Subscription,
    progress: StreamProgress,
    user: str = "",
) -> None:
    settings = request.app[SETTINGS]
    orphans = request.app[ORPHANS]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.stream_max_seconds if settings.stream_max_seconds else None
    cut = _cut_deadline(request, loop.time())
    # The heartbeat task ends when a ping cannot be written: the client is gone.
    closed = asyncio.ensure_future(resp.wait())
    poll: asyncio.Future[list[Delivery]] | None = None
    # Batches that an earlier stream's orphaned poll of this user received (see orphans.py).
    inbox = orphans.open_inbox(user) if user else None
    handed: asyncio.Future[Batch] | None = None
    # What this stream holds and has neither acknowledged nor released, each batch with the
    # subscription it came through: whatever ends the stream (a cancellation included),
    # `finally` hands these back.
    held: list[Batch] = []
    # This stream's deletes under way (they outlive it: `OrphanedPolls` tracks them).
    acks: list[asyncio.Task[None]] = []
    failures = 0
    try:
        while True:
            if deadline is not None and loop.time() >= deadline:
                progress.reason = "max lifetime"
                return
            # A poll or hand-off is replaced only once its result is taken (below, right
            # after the wait): one that completes while a batch is written waits its turn.
            if poll is None:
                if acks and subscription.ordered:
                    await asyncio.wait(acks)
                acks.clear()
                poll = asyncio.ensure_future(subscription.receive())
            if inbox is not None and handed is None:
                handed = asyncio.ensure_future(inbox.get())
            waiting: set[asyncio.Future[Any]] = {poll, closed}
            if handed is not None:
                waiting.add(handed)
            timeout = None if cut is None else max(0.0, cut - loop.time())
            await asyncio.wait(waiting, timeout=timeout, return_when=FIRST_COMPLETED)
            error = None
            if poll.done():
                error = poll.exception()
                if error is None:
                    held.append((subscription, list(poll.result())))
                poll = None
            if handed is not None and handed.done():
                held.append(handed.result())
                handed = None
            if closed.done():
                progress.reason = "client closed"
                return
            if not held and error is None and poll is not None:
                _cut(request, progress, "stream_cut")
                return
            while held:
                if not await _deliver(request, resp, held[0], progress, acks):
                    return
                held.pop(0)
            if error is not None and is_missing_queue(error):
                # The strategy could not heal its queue (preprovisioned never re-creates one):
                # end the stream; the client reconnects on the retry hint and refetches history.
                progress.reason = f"receive failed: {_code(error)}"
                return
            if error is not None:
                # SQS fails now and then (5xx, throttling): wait, then poll again.
                failures += 1
                progress.receive_errors += 1
                log_event(request, "receive failed", error=_code(error))
                await asyncio.sleep(_backoff(failures))
            elif poll is None:
                failures = 0
    finally:
        closed.cancel()
        await _hand_back(request, subscription, user, held, inbox, handed, poll)


async def _hand_back(
    request: web.Request,
    subscription: Subscription,
    user: str,
    held: list[Batch],
    inbox: asyncio.Queue[Batch] | None,
    handed: asyncio.Future[Batch] | None,
    poll: asyncio.Future[list[Delivery]] | None,
) -> None:
    """What an ending stream still holds goes back. asyncio.wait leaves its tasks running when
    the handler itself is cancelled (the client went away): the stream ends now, and neither
    its poll nor what it holds may stay invisible until the visibility timeout."""
    orphans = request.app[ORPHANS]
    for batch in held:
        orphans.release_later(*batch)
    if inbox is not None:
        if handed is not None and handed.done() and not handed.cancelled():
            orphans.release_later(*handed.result())  # taken, never added to `held`
        elif handed is not None:
            handed.cancel()
        for leftover in orphans.close_inbox(user, inbox):
            orphans.release_later(*leftover)
    if poll is not None and poll.done() and not poll.cancelled() and not poll.exception():
        orphans.release_later(subscription, list(poll.result()))  # done, never taken
    elif poll is not None:
        if request.app[SETTINGS].release_orphaned_polls:
            orphans.adopt(poll, subscription, user)
        else:
            poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poll


async def _deliver(
    request: web.Request,
    resp: EventSourceResponse,
    batch: Batch,
    progress: StreamProgress,
    acks: list[asyncio.Task[None]],
) -> bool:
    """Write each notification of the batch, starting its acknowledgement once written; False
    when the stream must end. The batch's list shrinks as each is settled."""
    subscription, unsettled = batch
    while unsettled:
        delivery = unsettled[0]
        lost = _nemesis(request).strikes("lost_write")
        if not lost and not await _write(resp, delivery):
            progress.reason = "write failed"
            return False
        unsettled.pop(0)
        acks.append(request.app[ORPHANS].acknowledge(subscription, delivery))
        progress.delivered += 1
        log_event(
            request,
            "notification written",
            messageId=delivery.notification.message_id,
            conversationId=delivery.notification.conversation_id,
        )
        if lost:
            _cut(request, progress, "lost_write")
            return False
    return True


def _nemesis(request: web.Request) -> Nemesis:
    return request.app[NEMESIS]


def _schedule_stall(request: web.Request, resp: HeartbeatResponse) -> asyncio.TimerHandle | None:
    """Fault `stall`: the stream stops forwarding bytes (heartbeats and notifications, which
    are still acknowledged, as a stalled proxy swallows them) but stays open until its client
    gives up."""
    after = _nemesis(request).stall_after()
    if after is None:
        return None
    return asyncio.get_running_loop().call_later(after, resp.stall)


def _cut_deadline(request: web.Request, now: float) -> float | None:
    after = _nemesis(request).stream_cut_after()
    return None if after is None else now + after


def _cut(request: web.Request, progress: StreamProgress, kind: str) -> None:
    """End the connection as a platform does: no clean end of the response, just gone."""
    if kind == "stream_cut":
        _nemesis(request).count(kind)
    progress.reason = kind
    if request.transport is not None:
        request.transport.abort()


def _backoff(failures: int) -> float:
    return float(min(RECEIVE_BACKOFF_CAP_S, RECEIVE_BACKOFF_BASE_S * 2 ** (failures - 1)))


def _code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code"))
    return type(exc).__name__


async def _write(resp: EventSourceResponse, delivery: Delivery) -> bool:
    n = delivery.notification
    try:
        await resp.send(n.to_json(), id=n.message_id, event="message")
    except (ConnectionResetError, RuntimeError, TimeoutError):
        # TimeoutError: the write outlasted the send timeout and aborted the connection.
        return False
    return True
