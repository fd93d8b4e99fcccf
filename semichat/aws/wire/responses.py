"""AWS's answers made up on the client's side: what a `before-send` handler returns instead of
sending, shaped as the service's JSON protocol answers (both SQS and DynamoDB speak it here),
so that botocore parses, retries and raises them exactly as it would real ones."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiobotocore.awsrequest import AioAWSResponse

# The protocol's error `__type` prefix, per service (AWS's own answers carry it).
TYPE_PREFIX = {"sqs": "com.amazonaws.sqs#", "dynamodb": "com.amazonaws.dynamodb.v20120810#"}
# SQS still answers its pre-JSON query codes in `x-amzn-query-error` ("code;Sender|Receiver"),
# and botocore reports that code: these are the ones that differ from the `__type`.
SQS_QUERY_CODES = {
    "QueueDeletedRecently": "AWS.SimpleQueueService.QueueDeletedRecently",
    "QueueDoesNotExist": "AWS.SimpleQueueService.NonExistentQueue",
    "InvalidParameterValue": "InvalidParameterValue",
}


class _Body:
    """The `raw` of a response: aiobotocore awaits `raw.read()` for the content."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self) -> bytes:
        return self._data


def json_response(url: str, status: int, body: dict[str, Any], **headers: str) -> AioAWSResponse:
    data = json.dumps(body).encode()
    all_headers = {
        "content-type": "application/x-amz-json-1.0",
        "content-length": str(len(data)),
        "x-amzn-requestid": str(uuid.uuid4()),
        **headers,
    }
    return AioAWSResponse(url, status, all_headers, _Body(data))


def error_response(
    url: str, service: str, code: str, status: int, message: str, **fields: Any
) -> AioAWSResponse:
    """An AWS error answer: `code` as the service names it, with the HTTP `status` AWS uses."""
    body = {"__type": TYPE_PREFIX.get(service, "") + code, "message": message, **fields}
    headers = {}
    if service == "sqs":
        fault = "Receiver" if status >= 500 else "Sender"
        headers["x-amzn-query-error"] = f"{SQS_QUERY_CODES.get(code, code)};{fault}"
    return json_response(url, status, body, **headers)
