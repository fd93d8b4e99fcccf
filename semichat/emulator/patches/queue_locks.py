"""SQS's receive, delete and visibility changes made atomic per queue in moto.

moto's receive scans a queue's messages and gives each one it takes a new receipt handle,
while a delete on another request thread walks the same messages, records the handles of the
one it removes, and drops it; neither holds a lock. So a delete can remove a message while a
receive hands it out under a handle recorded nowhere, and the delete of that handle answers
`ReceiptHandleIsInvalid`, then the release (`ChangeMessageVisibility`) fails too. SQS answers
such a delete with success ("the request succeeds, but the message might not be deleted",
DeleteMessage API reference). Under the soak (`benchmarks/soak.py`, 20 users, streams cut every
2 to 6 s, on a loaded machine) that left 27 notifications unsettled in 9 minutes.

Here those calls hold the queue's own condition (`Queue._messages_lock`, a re-entrant lock),
which moto's long poll already waits on: the wait releases it, so a held poll blocks no one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

# SQSBackend methods that read or change which messages a queue holds in flight; each takes
# the queue's name first.
LOCKED = (
    "receive_message",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
)


def _under_queue_lock(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)  # raises QueueDoesNotExist as the method would
        with queue._messages_lock:
            return method(self, queue_name, *args, **kwargs)

    locked.__semichat_queue_locked__ = True  # type: ignore[attr-defined]
    return locked


def lock_queue_state() -> None:
    """Patch moto's SQS backend in this process; calling it again changes nothing."""
    from moto.sqs.models import SQSBackend

    for name in LOCKED:
        method = getattr(SQSBackend, name)
        if not getattr(method, "__semichat_queue_locked__", False):
            setattr(SQSBackend, name, _under_queue_lock(method))
