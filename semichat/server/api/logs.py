"""Structured logs: one JSON object per line, one line per request, plus stream lifecycle lines."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import uuid
from typing import Any

from aiohttp import web

from semichat.server.errors import Handler

REQUEST_LOG = web.RequestKey("request_log", dict[str, Any])
REQUEST_ID_HEADER = "X-Request-Id"

access_log = logging.getLogger("semichat.access")
event_log = logging.getLogger("semichat.events")

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's own access log would duplicate ours in another format.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # At DEBUG botocore logs request and response bodies, message text included; ours carry ids.
    for noisy in ("botocore", "aiobotocore"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(level)))


def annotate(request: web.Request, **fields: Any) -> None:
    """Add fields (userId, conversationId, ...) to this request's log line."""
    request[REQUEST_LOG].update(fields)


def log_event(request: web.Request, msg: str, **fields: Any) -> None:
    event_log.info(msg, extra={**request.get(REQUEST_LOG, {}), **fields})


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
    request[REQUEST_LOG] = {"requestId": request_id, "userId": None, "conversationId": None}
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response
    except asyncio.CancelledError:
        status = 499  # the client went away first (nginx's convention)
        raise
    finally:
        access_log.info(
            "%s %s",
            request.method,
            request.path,
            extra={
                **request.get(REQUEST_LOG, {}),
                "method": request.method,
                "path": request.path,
                "status": status,
                "durationMs": round((time.perf_counter() - started) * 1000, 1),
            },
        )
