"""HTTP handlers: parse the request, call the domain, shape the response."""

from __future__ import annotations

import json
import os
import time
from importlib import resources
from typing import Any

from aiohttp import web

from semichat.aws.tables import CONVERSATIONS, table_names
from semichat.server.api.appkeys import (
    CHAT,
    CLIENTS,
    COUNTERS,
    DELIVERY,
    GUARD,
    LIMIT_COUNTERS,
    NEMESIS,
    REFUSALS,
    ROUTER,
    SEND_LIMITER,
    SETTINGS,
    STREAM_SLOTS,
    USAGE,
    WIRE,
)
from semichat.server.api.logs import annotate
from semichat.server.chat.payloads import parse_history, parse_participants, parse_send
from semichat.server.errors import BadRequest, PayloadTooLarge, Unavailable
from semichat.server.scheduling import run_queue

routes = web.RouteTableDef()
STATIC_DIR = resources.files("semichat") / "static"


async def read_json(request: web.Request) -> Any:
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    body = await request.read()
    if len(body) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("request body is not valid JSON") from None


@routes.post("/api/chat/conversations")
async def create_conversation(request: web.Request) -> web.Response:
    user = await request.app[GUARD].authenticate(request)
    annotate(request, userId=user)
    participants = parse_participants(await read_json(request))
    conversation_id, members = await request.app[CHAT].create_conversation(user, participants)
    annotate(request, conversationId=conversation_id)
    return web.json_response(
        {"conversationId": conversation_id, "participants": members}, status=201
    )


@routes.post("/api/chat/send")
async def send(request: web.Request) -> web.Response:
    user = await request.app[GUARD].authenticate(request)
    annotate(request, userId=user)
    # Before any backend work: a refused send costs this process nothing else.
    request.app[SEND_LIMITER].check(user)
    settings = request.app[SETTINGS]
    cmd = parse_send(
        await read_json(request), request.headers.get("Idempotency-Key"), settings.max_text_chars
    )
    annotate(request, conversationId=cmd.conversation_id)
    result = await request.app[CHAT].send(user, cmd)
    annotate(request, messageId=result.message_id, duplicate=result.duplicate)
    return web.json_response(result.to_json(), status=200 if result.duplicate else 201)


@routes.get("/api/chat/history")
async def history(request: web.Request) -> web.Response:
    user = await request.app[GUARD].authenticate(request)
    annotate(request, userId=user)
    settings = request.app[SETTINGS]
    query = parse_history(request.query, settings.history_default_limit, settings.history_max_limit)
    annotate(request, conversationId=query.conversation_id)
    messages, next_cursor = await request.app[CHAT].history(user, query)
    return web.json_response(
        {"messages": [m.to_json() for m in messages], "nextCursor": next_cursor}
    )


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    clients = request.app[CLIENTS]
    settings = request.app[SETTINGS]
    try:
        await clients.dynamodb.describe_table(
            TableName=table_names(settings.table_prefix)[CONVERSATIONS]
        )
        await clients.sqs.list_queues(QueueNamePrefix=settings.queue_prefix, MaxResults=1)
    except Exception as exc:
        raise Unavailable(f"backend not ready: {type(exc).__name__}", retry_after=1) from None
    return web.json_response(
        {"status": "ok", "backend": settings.backend, "routing": request.app[ROUTER].name}
    )


def _run_queue() -> dict[str, Any]:
    got = run_queue()
    return {} if got is None else {"cpu_wait_s": got[0], "cpu_turns": got[1]}


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """SQS requests made by this process so far: a run's cost is the difference of two reads.
    `limits`: requests refused by the limits and the trust checks, and the streams held."""
    return web.json_response(
        {
            "time": time.time(),
            # Which process answered: behind `serve --processes N` each has its own counters,
            # and whichever process takes the connection answers.
            "pid": os.getpid(),
            # CPU seconds this process has used: per backend request, what the model's
            # servers-needed figure is sized by (docs/capacity.md).
            "cpu_s": round(time.process_time(), 3),
            # Seconds it waited runnable for a core: with `cpu_s`, the share of a core it got
            # while it had work, the model's input on a loaded machine (docs/capacity.md).
            # `cpu_turns`: the time slices it ran, over which that wait was spread.
            **_run_queue(),
            "sqs": request.app[COUNTERS].snapshot(),
            "limits": {
                **request.app[LIMIT_COUNTERS].snapshot(),
                "open_streams": request.app[STREAM_SLOTS].open_total,
            },
            "routing": request.app[ROUTER].name,
            "delivery": request.app[DELIVERY].snapshot(),
            "faults": request.app[NEMESIS].snapshot(),
            # botocore beneath the app: attempts, retries by the code retried, and the errors
            # that reached the app, each keyed `service.Operation.Code`.
            "botocore": request.app[WIRE].snapshot(),
            # Requests answered 503 because SQS refused the app, by cause (quota, throttled...),
            # and sends answered 503 after storing their message (`fanout`: retry to announce).
            "refusals": dict(request.app[REFUSALS].items()),
            # Per "service:Operation": requests, DynamoDB units computed from item sizes, and
            # latency buckets (`semichat/aws/usage.py`).
            "backend": request.app[USAGE].snapshot(),
        }
    )


@routes.get("/")
async def index(request: web.Request) -> web.StreamResponse:
    page = STATIC_DIR / "index.html"
    if not page.is_file():
        return web.Response(text="semichat: the widget is not built into this package.\n")
    return web.Response(text=page.read_text(), content_type="text/html")
