"""API errors: every failure a client can cause becomes JSON `{"error": ...}` with a 4xx status."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web
from botocore.exceptions import ClientError
from botocore.exceptions import ConnectionError as BackendConnectionError

log = logging.getLogger("semichat.errors")

REFUSALS = web.AppKey("refusals", Counter[str])


class ApiError(Exception):
    status = 400

    def __init__(
        self,
        message: str,
        status: int | None = None,
        retry_after: int | None = None,
        refusal: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        # Whole seconds for a `Retry-After` header (429 and 503).
        self.retry_after = retry_after
        # The cause under which `/metrics` counts this answer in `refusals`, if it is one.
        self.refusal = refusal
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class PayloadTooLarge(ApiError):
    status = 413


class Unprocessable(ApiError):
    status = 422


class TooManyRequests(ApiError):
    status = 429


class Unavailable(ApiError):
    status = 503


def error_response(status: int, message: str, retry_after: int | None = None) -> web.Response:
    response = web.json_response({"error": message}, status=status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


THROTTLING_CODES = frozenset(
    {"ThrottlingException", "RequestThrottled", "Throttling", "RequestLimitExceeded"}
)
UNAVAILABLE_CODES = frozenset({"ServiceUnavailable", "InternalError", "InternalFailure"})
QUOTA_CODES = frozenset({"OverLimit"})


def backend_refusal(exc: ClientError) -> tuple[str, str] | None:
    """(cause, message) for an AWS error that is no bug of ours but AWS refusing us for now:
    the client gets a 503 and may retry. None for anything else (a 500: a bug to fix)."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    action = exc.operation_name
    if code in QUOTA_CODES:
        return "quota", (
            f"SQS refused {action} ({code}: {error.get('Message', '')}): the queue quota is "
            "reached, so no notification queue can be created for this user"
        )
    if code in THROTTLING_CODES:
        return "throttled", f"SQS throttled {action} ({code}); retry shortly"
    if code in UNAVAILABLE_CODES:
        return "unavailable", f"SQS failed {action} ({code}); retry shortly"
    return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        if exc.refusal is not None:
            request.app[REFUSALS][exc.refusal] += 1
        return error_response(exc.status, exc.message, exc.retry_after)
    except web.HTTPException as exc:
        # aiohttp's own refusals (no route, wrong method, body over client_max_size) as JSON too.
        if exc.status < 400:
            raise
        message = exc.reason if exc.status != 413 else "request body too large"
        return error_response(exc.status, message)
    except ClientError as exc:
        refusal = backend_refusal(exc)
        if refusal is None:
            log.exception("unhandled AWS error on %s %s", request.method, request.path)
            return error_response(500, "internal error")
        cause, message = refusal
        request.app[REFUSALS][cause] += 1
        log.warning("refused %s %s: %s", request.method, request.path, message)
        return error_response(503, message)
    except BackendConnectionError as exc:
        # The backend did not take the connection in time (an emulator's accept queue full
        # under 10,000 streams connecting, in `benchmarks/bench_streams.py`): not our bug.
        request.app[REFUSALS]["unreachable"] += 1
        log.warning("backend unreachable on %s %s: %s", request.method, request.path, exc)
        return error_response(503, "the backend did not answer; retry shortly", retry_after=1)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error")
