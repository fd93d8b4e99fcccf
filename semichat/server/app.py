"""The application factory: settings in, a ready `web.Application` out."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from semichat.aws.clients import open_clients
from semichat.aws.tables import ensure_tables
from semichat.server.appkeys import (
    CHAT,
    CLIENTS,
    COUNTERS,
    NEMESIS,
    ORPHANS,
    REFUSALS,
    ROUTER,
    SETTINGS,
)
from semichat.server.chat import ChatService
from semichat.server.errors import error_middleware
from semichat.server.faulty_sqs import FaultySqsQueues
from semichat.server.logs import request_log_middleware
from semichat.server.metrics import SqsCounters
from semichat.server.nemesis import Nemesis
from semichat.server.orphans import OrphanedPolls
from semichat.server.routing import make_router
from semichat.server.routing.naming import validate_prefix
from semichat.server.sqs import SqsQueues
from semichat.server.store import ChatStore
from semichat.settings import Settings

from . import handlers, stream


def create_app(settings: Settings) -> web.Application:
    validate_prefix(settings.queue_prefix)
    app = web.Application(
        middlewares=[request_log_middleware, error_middleware],
        # A little above the JSON limit so that the handler, not aiohttp, words the 413.
        client_max_size=settings.max_body_bytes + 1024,
    )
    app[SETTINGS] = settings
    app[COUNTERS] = SqsCounters()
    app[NEMESIS] = Nemesis.from_text(settings.faults)
    app[REFUSALS] = Counter()
    app.cleanup_ctx.append(_aws)
    # After _aws, so that it closes first: orphaned polls still use the SQS client.
    app.cleanup_ctx.append(_orphans)
    app.add_routes(handlers.routes)
    app.add_routes(stream.routes)
    if handlers.STATIC_DIR.is_dir():
        app.router.add_static("/static/", str(handlers.STATIC_DIR))
    return app


async def _aws(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with open_clients(settings) as clients:
        if settings.create_tables:
            await ensure_tables(clients.dynamodb, settings.table_prefix)
        store = ChatStore(clients.dynamodb, settings.table_prefix)
        queues = _queues(clients.sqs, app[COUNTERS], app[NEMESIS])
        router = make_router(settings, queues, store)
        app[CLIENTS] = clients
        app[ROUTER] = router
        app[CHAT] = ChatService(store, router, settings)
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


async def _orphans(app: web.Application) -> AsyncIterator[None]:
    app[ORPHANS] = OrphanedPolls(app[COUNTERS])
    yield
    await app[ORPHANS].close()
