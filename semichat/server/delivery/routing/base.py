"""How notifications reach a user's connections: one interface, one class per strategy.

A notification says only "message X is in conversation Y"; clients fetch the message itself
from history. Delivery is at least once: a stream acknowledges a notification only after writing
it, so a failed write leaves it to be delivered again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Notification:
    message_id: str
    conversation_id: str

    def to_json(self) -> str:
        return json.dumps({"messageId": self.message_id, "conversationId": self.conversation_id})

    @classmethod
    def from_json(cls, body: str) -> Notification:
        data = json.loads(body)
        return cls(message_id=str(data["messageId"]), conversation_id=str(data["conversationId"]))


@dataclass(frozen=True)
class Envelope:
    """A notification addressed to several recipients, as one SQS message carries it to a
    queue shared by users (the `sharded` and `instance` strategies)."""

    notification: Notification
    recipients: tuple[str, ...]
    # `sharded` with several processes: the processes that already handed this notification to
    # the streams they hold, and how often it was passed on (see `ShardedRouter.forward`).
    visited: tuple[str, ...] = ()
    hops: int = 0

    def to_json(self) -> str:
        n = self.notification
        body: dict[str, object] = {
            "messageId": n.message_id,
            "conversationId": n.conversation_id,
            "recipients": list(self.recipients),
        }
        if self.visited:
            body.update(visited=list(self.visited), hops=self.hops)
        return json.dumps(body)

    @classmethod
    def from_json(cls, body: str) -> Envelope:
        data = json.loads(body)
        recipients = data["recipients"]
        visited = data.get("visited", [])
        if not isinstance(recipients, list) or not isinstance(visited, list):
            raise ValueError("recipients and visited must be lists")
        return cls(
            Notification.from_json(body),
            tuple(str(r) for r in recipients),
            tuple(str(v) for v in visited),
            int(data.get("hops", 0)),
        )


@dataclass(frozen=True)
class Delivery:
    """A notification handed to one subscription, with the handle that acknowledges it."""

    notification: Notification
    receipt: str


class Subscription(Protocol):
    """One stream's view of its user's notifications."""

    # Whether the stream must see its deletes done before it receives again (a FIFO queue
    # hands out a group's next message only once the one before is deleted).
    ordered: bool

    async def receive(self) -> list[Delivery]:
        """Wait (long poll) for notifications; an empty list when the wait ran out."""
        ...

    async def acknowledge(self, delivery: Delivery) -> None:
        """The notification was written to the client: never deliver it again."""
        ...

    async def release(self, delivery: Delivery) -> None:
        """The notification could not be written: deliver it again soon."""
        ...

    async def close(self) -> None:
        """The stream has ended: stop reading for it (a pending `receive` returns soon)."""
        ...


class NotificationRouter(Protocol):
    name: str
    # Whether each waiting stream holds a long poll of its own (one pooled connection to SQS):
    # what bounds how many streams a process may hold (`semichat/server/trust/capacity.py`).
    stream_holds_poll: bool

    async def start(self) -> None:
        """Before serving: create what the process itself needs (shared queues, its own queue)
        and start its background work (dispatchers, heartbeats)."""
        ...

    async def close(self) -> None:
        """At clean shutdown: stop background work and remove what `start` made for this
        process alone."""
        ...

    async def publish(self, recipients: Sequence[str], notification: Notification) -> None:
        """Deliver the notification to every recipient; raises if any could not be reached."""
        ...

    async def subscribe(self, user_id: str) -> Subscription:
        """Open what a stream of this user reads from (creating it on first use)."""
        ...

    async def provision_users(self, users: Sequence[str], concurrency: int) -> dict[str, str]:
        """Create ahead what these users' streams will read from (`semichat provision
        --users`), at most `concurrency` at a time; returns what was made, per user. A
        strategy with nothing per user raises ValueError saying so."""
        ...


class QueueDirectory(Protocol):
    """What a strategy needs of the chat's store, passed in (the chat's `ChatStore` is one):
    the DynamoDB client and table prefix (the connection registry's table), and the
    ChatUserQueue mapping of a user to their queue (per-user queues)."""

    table_prefix: str

    @property
    def dynamodb(self) -> Any: ...

    async def get_queue_url(self, user_id: str) -> str | None: ...

    async def put_queue_url(self, user_id: str, queue_url: str, created_at: str) -> None: ...
