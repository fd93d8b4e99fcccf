"""The application factory: settings in, a ready `web.Application` out."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from semichat.aws.batches import MARKS_COMMIT, REGISTRATIONS_COMMIT
from semichat.aws.clients import open_clients
from semichat.aws.latency import load_profile
from semichat.aws.tables import ensure_tables
from semichat.aws.usage import BackendUsage, watch
from semichat.aws.wire import WireCounters
from semichat.server.api.appkeys import (
    CHAT,
    CLIENTS,
    COUNTERS,
    DELIVERY,
    GUARD,
    LIMIT_COUNTERS,
    NEMESIS,
    ORPHANS,
    REFUSALS,
    ROUTER,
    SEND_LIMITER,
    SETTINGS,
    STREAM_SLOTS,
    USAGE,
    WIRE,
)
from semichat.server.api.logs import request_log_middleware
from semichat.server.chat.service import ChatService
from semichat.server.chat.store import ChatStore
from semichat.server.delivery.orphans import OrphanedPolls
from semichat.server.delivery.routing import make_router
from semichat.server.delivery.routing.naming import validate_prefix
from semichat.server.delivery.sqs import SqsQueues
from semichat.server.errors import error_middleware
from semichat.server.faults import FaultySqsQueues, Nemesis
from semichat.server.metrics import DeliveryCounters, LimitCounters, SqsCounters
from semichat.server.trust import (
    RequestGuard,
    SendLimiter,
    StreamSlots,
    add_security_headers,
    make_authenticator,
)
from semichat.settings import Settings

from . import handlers, session, stream


def create_app(settings: Settings) -> web.Application:
    validate_prefix(settings.queue_prefix)
    app = web.Application(
        middlewares=[request_log_middleware, error_middleware],
        # A little above the JSON limit so that the handler, not aiohttp, words the 413.
        client_max_size=settings.max_body_bytes + 1024,
    )
    app[SETTINGS] = settings
    app[COUNTERS] = SqsCounters()
    limit_counters = LimitCounters()
    app[LIMIT_COUNTERS] = limit_counters
    # Built here, not at start-up, so that a token mode without a key fails before serving.
    app[GUARD] = RequestGuard(make_authenticator(settings), settings, limit_counters)
    app[SEND_LIMITER] = SendLimiter(settings, limit_counters)
    app[STREAM_SLOTS] = StreamSlots(settings, limit_counters)
    app.on_response_prepare.append(add_security_headers)
    app[DELIVERY] = DeliveryCounters()
    app[NEMESIS] = Nemesis.from_text(settings.faults)
    app[REFUSALS] = Counter()
    app[USAGE] = BackendUsage()
    app[WIRE] = WireCounters()
    app.cleanup_ctx.append(_aws)
    # After _aws, so that it closes first: the router's background work uses the clients.
    app.cleanup_ctx.append(_routing)
    # After _aws, so that it closes first: orphaned polls still use the SQS client.
    app.cleanup_ctx.append(_orphans)
    app.add_routes(handlers.routes)
    app.add_routes(stream.routes)
    app.add_routes(session.routes)
    if handlers.STATIC_DIR.is_dir():
        app.router.add_static("/static/", str(handlers.STATIC_DIR))
    return app


async def _aws(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    nemesis = app[NEMESIS]
    spec = nemesis.spec
    # The wire faults only when some fault is asked for: no handler to run on every attempt else.
    wire_nemesis = nemesis if spec.server_side else None
    # `latency=` acts beneath the clients' retries, so it is installed on the clients themselves;
    # the calls it slowed down are counted with the other faults (`latency`).
    latency = load_profile(spec.latency) if spec.latency else None
    on_delay = (lambda key: nemesis.count("latency")) if latency else None
    async with open_clients(
        settings,
        nemesis=wire_nemesis,
        counters=app[WIRE],
        latency=latency,
        seed=spec.seed,
        on_delay=on_delay,
    ) as clients:
        # Requests, DynamoDB units and latency per operation, for `/metrics` (cost, the model).
        watch(clients.dynamodb, "dynamodb", app[USAGE])
        watch(clients.sqs, "sqs", app[USAGE])
        if settings.create_tables:
            await ensure_tables(clients.dynamodb, settings.table_prefix)
        store = ChatStore(clients.dynamodb, settings.table_prefix)
        queues = _queues(clients.sqs, app[COUNTERS], app[NEMESIS])
        usage = app[USAGE]
        router = make_router(
            settings,
            queues,
            store,
            app[DELIVERY],
            on_registration_cycle=lambda ms: usage.time(REGISTRATIONS_COMMIT, ms),
        )
        app[CLIENTS] = clients
        app[ROUTER] = router
        app[CHAT] = ChatService(
            store, router, settings, on_mark_cycle=lambda ms: usage.time(MARKS_COMMIT, ms)
        )
        if isinstance(queues, FaultySqsQueues):
            queues.start()
        try:
            yield
        finally:
            if isinstance(queues, FaultySqsQueues):
                await queues.close()


def _queues(sqs: Any, counters: SqsCounters, nemesis: Nemesis) -> SqsQueues:
    """The SQS layer every routing strategy gets: with the nemesis's faults when there are any."""
    if nemesis.spec.server_side:
        return FaultySqsQueues(sqs, counters, nemesis)
    return SqsQueues(sqs, counters)


async def _routing(app: web.Application) -> AsyncIterator[None]:
    """What the strategy needs per process (its own queue, dispatchers, heartbeats)."""
    await app[ROUTER].start()
    yield
    await app[ROUTER].close()


async def _orphans(app: web.Application) -> AsyncIterator[None]:
    app[ORPHANS] = OrphanedPolls(app[COUNTERS])
    yield
    await app[ORPHANS].close()
