"""What the wire faults ask of the nemesis: seeded decisions and the counts of what struck.

The nemesis itself lives in the server (`semichat/server/faults/nemesis.py`), above this layer;
this protocol is all the AWS layer knows of it.
"""

from __future__ import annotations

import json
from typing import Any, Protocol


class Decisions(Protocol):
    def strikes(self, kind: str) -> bool:
        """Whether fault `kind` (a probability) strikes this attempt; counted when it does."""
        ...

    def count(self, kind: str, n: int = 1) -> None: ...

    def uniform(self, low: float, high: float) -> float: ...

    def value(self, kind: str) -> float:
        """The kind's setting (0 when off)."""
        ...

    def failure_code(self) -> tuple[str, int]:
        """One of the errors AWS fails a call with: (code, HTTP status)."""
        ...


def request_params(request: Any) -> dict[str, Any]:
    """The call's parameters, read back from the JSON body botocore serialised."""
    body = request.body
    if not body:
        return {}
    if hasattr(body, "read"):  # a stream: not a JSON-protocol call of this app
        return {}
    try:
        params = json.loads(body)
    except ValueError:
        return {}
    return params if isinstance(params, dict) else {}


def operation(event_name: str) -> str:
    """`SendMessage` from `before-send.sqs.SendMessage`."""
    return event_name.rsplit(".", 1)[1]
