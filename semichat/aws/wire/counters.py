"""What botocore did beneath the app: the attempts it retried, and the errors it gave up on.

A key is `service.Operation.Code` (`sqs.ReceiveMessage.ServiceUnavailable`), flat so that the
harness sums them over processes and lives like any other counter. `retries` counts attempts
botocore made again after an error, by the code of the error it retried; `errors` counts the
errors that reached the app (botocore gave up, or the code is not one it retries).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

# Where the code of an attempt's error is kept in botocore's per-call context, for the
# attempt after it (the context lives as long as the call, retries included).
LAST_CODE = "semichat_last_error_code"


def error_code(parsed: dict[str, Any] | None, exception: BaseException | None) -> str | None:
    """The AWS error code of one attempt's answer, the exception's class for a failed
    connection, or None for a success."""
    if exception is not None:
        return type(exception).__name__
    code = (parsed or {}).get("Error", {}).get("Code")
    return str(code) if code else None


class WireCounters:
    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def snapshot(self) -> dict[str, Any]:
        return {
            "attempts": dict(sorted(self.attempts.items())),
            "retries": dict(sorted(self.retries.items())),
            "errors": dict(sorted(self.errors.items())),
        }

    def install(self, client: Any, service: str) -> None:
        """Count every attempt of `client`'s calls: first on `before-send`, so that attempts a
        fault answers are counted too (handlers run in the order registered)."""
        events = client.meta.events
        events.register_first(f"before-send.{service}", self._on_attempt)
        events.register(f"response-received.{service}", self._on_answer)
        events.register(f"after-call.{service}", self._on_call)
        events.register(f"after-call-error.{service}", self._on_call_error)

    def _on_attempt(self, request: Any, event_name: str, **_: Any) -> None:
        key = _key(event_name)
        self.attempts[key] += 1
        context = getattr(request, "context", None) or {}
        if context.get("retries", {}).get("attempt", 1) > 1:
            self.retries[f"{key}.{context.get(LAST_CODE) or 'unknown'}"] += 1

    def _on_answer(
        self,
        context: dict[str, Any],
        parsed_response: dict[str, Any] | None = None,
        exception: BaseException | None = None,
        **_: Any,
    ) -> None:
        context[LAST_CODE] = error_code(parsed_response, exception)

    def _on_call(
        self, http_response: Any, parsed: dict[str, Any], event_name: str, **_: Any
    ) -> None:
        if http_response.status_code >= 300:
            self.errors[f"{_key(event_name)}.{error_code(parsed, None) or 'unknown'}"] += 1

    def _on_call_error(self, exception: BaseException, event_name: str, **_: Any) -> None:
        self.errors[f"{_key(event_name)}.{type(exception).__name__}"] += 1


def _key(event_name: str) -> str:
    """`service.Operation` from an event name such as `before-send.sqs.SendMessage`."""
    return event_name.split(".", 1)[1]
