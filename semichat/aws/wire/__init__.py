"""The wire: faults and AWS's documented limits beneath botocore's retries, and the count of
what botocore retried.

`install_wire_faults` registers, on one client, a `before-send` handler that may answer an
attempt without sending it (`sqs.py`, `dynamodb.py`); aiobotocore awaits it inside the retry
loop, so botocore retries an injected throttling or 5xx answer as it would AWS's.
`WireCounters.install` counts each attempt, each retry by the code retried, and each error
that reached the app (`counters.py`). Other hooks on the same clients (latency) register
beside these.
"""

from __future__ import annotations

from typing import Any

from semichat.aws.wire.counters import WireCounters
from semichat.aws.wire.decisions import Decisions
from semichat.aws.wire.dynamodb import DynamoWire
from semichat.aws.wire.sqs import SqsWire

__all__ = ["Decisions", "WireCounters", "install_wire_faults"]


def install_wire_faults(client: Any, service: str, nemesis: Decisions) -> None:
    """Let the nemesis answer `client`'s attempts (`service`: `sqs` or `dynamodb`)."""
    if service == "sqs":
        SqsWire(client, nemesis).install()
    elif service == "dynamodb":
        DynamoWire(client, nemesis).install()
    else:
        raise ValueError(f"no wire faults for {service!r}")
