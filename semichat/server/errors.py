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


# AWS's refusals that are no bug of ours, by cause, for both services. botocore has already
# retried the retryable ones (throttling, 5xx) by the time the app sees them.
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "RequestThrottled",
        "Throttling",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "KmsThrottled",
    }
)
UNAVAILABLE_CODES = frozenset(
    {"ServiceUnavailable", "InternalError", "InternalFailure", "InternalServerError"}
)
# A transaction cancelled by a concurrent one (or its token in use): retrying the same request
# later succeeds, or finds the first attempt's result (`chat/service.py`'s idempotency record).
CONFLICT_CODES = frozenset(
    {
        "TransactionCanceledException",
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)
QUOTA_CODES = frozenset({"OverLimit"})
RECENTLY_DELETED_CODES = frozenset(
    {"QueueDeletedRecently", "AWS.SimpleQueueService.QueueDeletedRecently"}
)
# Seconds a client should wait before retrying, per cause: a throttled or failed call's retry
# soon succeeds; a queue name deleted recently is reusable 60 s after its deletion (Amazon SQS
# API reference, CreateQueue); an in-flight limit or quota takes longer to clear.
RETRY_AFTER_S = {
    "throttled": 1,
    "unavailable": 1,
    "conflict": 1,
    "quota": 30,
    "recently_deleted": 60,
}
DYNAMODB_ACTIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchWriteItem",
        "BatchGetItem",
        "TransactWriteItems",
        "TransactGetItems",
        "DescribeTable",
        "CreateTable",
    }
)


def backend_refusal(exc: ClientError) -> tuple[str, str] | None:
    """(cause, message) for an AWS error that is no bug of ours but AWS refusing us for now:
    the client gets a 503 with `Retry-After` (`RETRY_AFTER_S[cause]`) and may retry. None for
    anything else (a 500: a bug to fix)."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    action = exc.operation_name
    service = "DynamoDB" if action in DYNAMODB_ACTIONS else "SQS"
    if code in QUOTA_CODES:
        return "quota", (
            f"SQS refused {action} ({code}: {error.get('Message', '')}): the queue quota is "
            "reached, so no notification queue can be created for this user"
            if action == "CreateQueue"
            else f"SQS refused {action} ({code}: {error.get('Message', '')}); retry later"
        )
    if code in THROTTLING_CODES:
        return "throttled", f"{service} throttled {action} ({code}); retry shortly"
    if code in UNAVAILABLE_CODES:
        return "unavailable", f"{service} failed {action} ({code}); retry shortly"
    if code in CONFLICT_CODES:
        return "conflict", f"{service} cancelled {action} ({code}); retry shortly"
    if code in RECENTLY_DELETED_CODES:
        return "recently_deleted", (
            f"SQS refused {action} ({code}): the notification queue was deleted less than "
            "60 s ago and cannot be created again yet; retry in a minute"
        )
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
        return error_response(503, message, retry_after=RETRY_AFTER_S[cause])
    except BackendConnectionError as exc:
        # The backend did not take the connection in time (an emulator's accept queue full
        # under 10,000 streams connecting, in `benchmarks/bench_streams.py`): not our bug.
        request.app[REFUSALS]["unreachable"] += 1
        log.warning("backend unreachable on %s %s: %s", request.method, request.path, exc)
        return error_response(503, "the backend did not answer; retry shortly", retry_after=1)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error")
