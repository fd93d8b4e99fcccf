"""SQS's faults and documented limits, at the wire: each attempt botocore makes may be
answered here, without sending, as SQS would answer it. botocore's retry handler then treats
the answer as a real one (it runs inside the retry loop), so a throttled or 5xx attempt is
retried before the app sees anything, as on AWS.

Errors (probabilities): `receive_error`, `send_error`, `delete_fail`, `create_throttle`.
Limits AWS documents and emulators skip (Amazon SQS Developer Guide, quotas; API reference):
- `queue_quota=N`: CreateQueue of a name beyond the N this process created: `OverLimit`.
- `queue_deleted_recently=S`: CreateQueue of a name deleted less than S s ago (AWS: 60 s):
  `QueueDeletedRecently`.
- `inflight_limit=N`: a short poll (WaitTimeSeconds 0) of a queue with N messages in flight
  (AWS: 120,000): `OverLimit`. Long polls past it are sent as usual (AWS: they return nothing).
- `fifo_tps=N`: more than N requests per second per action on one FIFO queue (AWS: 300; a
  batch is one request): `ThrottlingException`.
- `message_size=B`: SendMessage of a body over B bytes to a queue created without its own
  `MaximumMessageSize` (AWS's default: 1,048,576, per the CreateQueue reference botocore
  ships; a queue created with one keeps its own): `InvalidParameterValue`.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from aiobotocore.awsrequest import AioAWSResponse

from semichat.aws.wire.decisions import Decisions, operation, request_params
from semichat.aws.wire.responses import error_response

DEFAULT_VISIBILITY_S = 30
DELETES = ("DeleteMessage", "DeleteMessageBatch")
# Where the queue of a ReceiveMessage is kept for its answer (botocore's per-call context).
RECEIVED_FROM = "semichat_received_from"


def queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


class SqsWire:
    def __init__(self, client: Any, nemesis: Decisions, clock: Any = time.monotonic) -> None:
        self._client = client
        self._nemesis = nemesis
        self._clock = clock
        self._created: set[str] = set()
        self._deleted_at: dict[str, float] = {}
        self._max_bytes: dict[str, int] = {}
        self._visibility: dict[str, int] = {}
        # Per queue URL: receipt handle -> when it becomes visible again.
        self._in_flight: dict[str, dict[str, float]] = {}
        # Per (queue URL, action): requests in the current whole second.
        self._second = 0
        self._rate: Counter[tuple[str, str]] = Counter()

    def install(self) -> None:
        events = self._client.meta.events
        events.register("before-send.sqs", self.before_send)
        if self._nemesis.value("inflight_limit"):
            events.register("after-call.sqs.ReceiveMessage", self._on_received)

    async def before_send(self, request: Any, event_name: str, **_: Any) -> AioAWSResponse | None:
        op = operation(event_name)
        params = request_params(request)
        url = str(params.get("QueueUrl", ""))
        refusal = self._limit(op, url, params, request.context)
        if refusal is not None:
            kind, code, status, message = refusal
            if kind:
                self._nemesis.count(kind)
            return error_response(request.url, "sqs", code, status, message)
        return await self._error(op, request)

    def _limit(
        self, op: str, url: str, params: dict[str, Any], context: dict[str, Any]
    ) -> tuple[str, str, int, str] | None:
        """The documented limit this attempt runs into: (kind, code, status, message)."""
        if op == "CreateQueue":
            return self._create_limit(str(params.get("QueueName", "")), params)
        if op == "DeleteQueue":
            self._deleted_at[queue_name(url)] = self._clock()
            self._created.discard(queue_name(url))
        tps = self._nemesis.value("fifo_tps")
        if tps and url.endswith(".fifo") and self._over_rate(url, op, tps):
            return ("fifo_tps", "ThrottlingException", 400, "Rate exceeded (FIFO queue)")
        if op == "SendMessage":
            return self._size_limit(url, str(params.get("MessageBody", "")))
        if op == "ReceiveMessage":
            return self._receive_limit(url, params, context)
        if op in DELETES or op == "ChangeMessageVisibility":
            self._settle(op, url, params)
        return None

    def _create_limit(self, name: str, params: dict[str, Any]) -> tuple[str, str, int, str] | None:
        window = self._nemesis.value("queue_deleted_recently")
        deleted = self._deleted_at.get(name)
        if window and deleted is not None and self._clock() - deleted < window:
            return (
                "queue_deleted_recently",
                "QueueDeletedRecently",
                400,
                f"You must wait {window:g} seconds after deleting a queue before you can create "
                "another with the same name.",
            )
        quota = int(self._nemesis.value("queue_quota"))
        if quota and name not in self._created and len(self._created) >= quota:
            return ("queue_quota", "OverLimit", 403, f"the quota of {quota} queues is reached")
        if self._nemesis.strikes("create_throttle"):
            return ("", "RequestThrottled", 403, "Rate exceeded")  # counted by strikes()
        self._created.add(name)
        attributes = params.get("Attributes") or {}
        if "MaximumMessageSize" in attributes:
            self._max_bytes[name] = int(attributes["MaximumMessageSize"])
        if "VisibilityTimeout" in attributes:
            self._visibility[name] = int(attributes["VisibilityTimeout"])
        return None

    def _size_limit(self, url: str, body: str) -> tuple[str, str, int, str] | None:
        limit = int(self._nemesis.value("message_size"))
        if not limit:
            return None
        limit = self._max_bytes.get(queue_name(url), limit)
        if len(body.encode()) <= limit:
            return None
        return (
            "message_size",
            "InvalidParameterValue",
            400,
            "One or more parameters are invalid. Reason: Message must be shorter than "
            f"{limit} bytes.",
        )

    def _receive_limit(
        self, url: str, params: dict[str, Any], context: dict[str, Any]
    ) -> tuple[str, str, int, str] | None:
        limit = int(self._nemesis.value("inflight_limit"))
        if not limit:
            return None
        context[RECEIVED_FROM] = (url, params.get("VisibilityTimeout"))
        if int(params.get("WaitTimeSeconds", 0)) > 0 or self._count_in_flight(url) < limit:
            return None
        return ("inflight_limit", "OverLimit", 403, "Too many messages in flight")

    def _over_rate(self, url: str, op: str, tps: float) -> bool:
        second = int(self._clock())
        if second != self._second:
            self._second, self._rate = second, Counter()
        self._rate[(url, op)] += 1
        return self._rate[(url, op)] > tps

    # -- in-flight messages ----------------------------------------------------------------

    def _count_in_flight(self, url: str) -> int:
        now = self._clock()
        handles = self._in_flight.get(url, {})
        for handle in [h for h, until in handles.items() if until <= now]:
            del handles[handle]
        return len(handles)

    def _on_received(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        url, visibility = context.get(RECEIVED_FROM, ("", None))
        if not url:
            return
        seconds = visibility or self._visibility.get(queue_name(url), DEFAULT_VISIBILITY_S)
        until = self._clock() + int(seconds)
        self._count_in_flight(url)  # forget the expired first: long polls never count them
        handles = self._in_flight.setdefault(url, {})
        for message in parsed.get("Messages", []):
            handles[message["ReceiptHandle"]] = until

    def _settle(self, op: str, url: str, params: dict[str, Any]) -> None:
        handles = self._in_flight.get(url)
        if not handles:
            return
        if op == "DeleteMessage":
            handles.pop(str(params.get("ReceiptHandle")), None)
        elif op == "DeleteMessageBatch":
            for entry in params.get("Entries", []):
                handles.pop(str(entry.get("ReceiptHandle")), None)
        else:  # ChangeMessageVisibility: in flight until its new timeout (0: visible now)
            handle, seconds = (
                str(params.get("ReceiptHandle")),
                int(params.get("VisibilityTimeout", 0)),
            )
            if seconds == 0:
                handles.pop(handle, None)
            elif handle in handles:
                handles[handle] = self._clock() + seconds

    # -- errors ------------------------------------------------------------------------------

    async def _error(self, op: str, request: Any) -> AioAWSResponse | None:
        """A 5xx or throttling answer, for the operations whose error kind strikes."""
        kind = ERROR_KINDS.get(op)
        if kind is None or not self._nemesis.strikes(kind):
            return None
        if kind == "send_error" and self._nemesis.uniform(0, 1) < 0.5:
            # Half of the failed sends reached the queue: an error after the fact, as a lost
            # answer is. The request goes out on the client's own connection pool (as the
            # endpoint would send it), its answer is dropped and an error returned instead.
            sent = await self._client._endpoint.http_session.send(request)
            await sent.content
        code, status = self._nemesis.failure_code()
        return error_response(request.url, "sqs", code, status, f"{code} (injected)")


ERROR_KINDS = {
    "ReceiveMessage": "receive_error",
    "SendMessage": "send_error",
    "DeleteMessage": "delete_fail",
    "DeleteMessageBatch": "delete_fail",
}
