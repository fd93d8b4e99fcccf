"""What moto's queues hold, for `--data-dir` (`semichat/emulator/persistence.py`) to save: the
AWS API cannot read a queue's messages without receiving them (and so hiding them)."""

from __future__ import annotations

from typing import Any


def held_messages(queue_name: str) -> list[dict[str, Any]]:
    """The messages moto holds for the queue (visible, delayed or in flight), as SendMessage
    arguments; empty if moto's internals are not what this expects."""
    try:
        from moto.sqs.models import sqs_backends

        for regions in sqs_backends.values():
            for backend in regions.values():
                queue = backend.queues.get(queue_name)
                if queue is not None:
                    return [as_send(m) for m in list(queue._messages)]
    except (ImportError, AttributeError):
        pass
    return []


def as_send(message: Any) -> dict[str, Any]:
    send: dict[str, Any] = {"MessageBody": message.body}
    if getattr(message, "group_id", None):
        send["MessageGroupId"] = message.group_id
    if getattr(message, "deduplication_id", None):
        send["MessageDeduplicationId"] = message.deduplication_id
    return send
