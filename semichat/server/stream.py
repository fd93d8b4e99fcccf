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
from dataclasses import dataclass

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from semichat.server.appkeys import COUNTERS, GUARD, ORPHANS, ROUTER, SETTINGS, STREAM_SLOTS
from semichat.server.logs import annotate, log_event
from semichat.server.routing import Delivery, Subscription

routes = web.RouteTableDef()

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
RECONNECT_HINT_MS = 1000


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
            request, headers=SSE_HEADERS, ping_interval=settings.heartbeat_seconds
        ) as resp:
            log_event(request, "stream connected")
            await resp.send(
                json.dumps({"streamId": stream_id}), event="ready", retry=RECONNECT_HINT_MS
            )
            await _pump(request, resp, subscription, progress)
        return resp
    finally:
        counters.open_streams -= 1
        # Shielded: a stream ended by its client's departure is being cancelled, and the
        # strategy's bookkeeping (the instance registry) must still finish.
        with contextlib.suppress(Exception):
            await asyncio.shield(subscription.close())
        log_event(
            request, "stream disconnected", reason=progress.reason, delivered=progress.delivered
        )


@dataclass
class StreamProgress:
    """Kept outside `_pump` so that a cancelled handler still logs what its stream did."""

    delivered: int = 0
    reason: str = "client closed"


async def _pump(
    request: web.Request,
    resp: EventSourceResponse,
    subscription: Subscription,
    progress: StreamProgress,
) -> None:
    settings = request.app[SETTINGS]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.stream_max_seconds if settings.stream_max_seconds else None
    # The heartbeat task ends when a ping cannot be written: the client is gone.
    closed = asyncio.ensure_future(resp.wait())
    poll: asyncio.Future[list[Delivery]] | None = None
    try:
        while True:
            if deadline is not None and loop.time() >= deadline:
                progress.reason = "max lifetime"
                return
            poll = asyncio.ensure_future(subscription.receive())
            await asyncio.wait({poll, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not poll.done():
                progress.reason = "client closed"
                return
            try:
                deliveries = poll.result()
            except Exception as exc:
                # The queue is out of reach (or was deleted and may not be re-created): end the
                # stream; the client reconnects on the retry hint and refetches history.
                progress.reason = f"receive failed: {type(exc).__name__}"
                return
            for i, delivery in enumerate(deliveries):
                if not await _write(resp, delivery):
                    await _release(subscription, deliveries[i:])
                    progress.reason = "write failed"
                    return
                await subscription.acknowledge(delivery)
                progress.delivered += 1
                log_event(
                    request,
                    "notification acknowledged",
                    messageId=delivery.notification.message_id,
                    conversationId=delivery.notification.conversation_id,
                )
    finally:
        # asyncio.wait leaves its tasks running when the handler itself is cancelled (the
        # client went away): the stream ends now, and its poll must not outlive it unseen.
        closed.cancel()
        if poll is not None and not poll.done():
            if settings.release_orphaned_polls:
                request.app[ORPHANS].adopt(poll, subscription)
            else:
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poll


async def _write(resp: EventSourceResponse, delivery: Delivery) -> bool:
    n = delivery.notification
    try:
        await resp.send(n.to_json(), id=n.message_id, event="message")
    except (ConnectionResetError, RuntimeError):
        return False
    return True


async def _release(subscription: Subscription, deliveries: list[Delivery]) -> None:
    # Best effort: if this fails too, the visibility timeout brings them back a little later.
    for delivery in deliveries:
        with contextlib.suppress(Exception):
            await subscription.release(delivery)
