"""Counters of SQS requests: what a run costs, since SQS bills per request (empty ones too)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class SqsCounters:
    send: int = 0
    receive: int = 0
    empty_receive: int = 0
    messages_received: int = 0
    delete: int = 0
    change_visibility: int = 0
    create_queue: int = 0
    get_queue_url: int = 0
    delete_queue: int = 0
    errors: int = 0
    # Notifications a poll received after its stream had gone, handed back at once.
    orphan_releases: int = 0
    # ... or handed straight to the user's newer stream in this process.
    orphan_handoffs: int = 0
    # Where received notifications end: deleted (acknowledged), released (made visible again at
    # once), or neither (a delete and the release after it both failed: it comes back after the
    # visibility timeout). Once no stream holds a batch, messages_received equals their sum.
    messages_deleted: int = 0
    messages_released: int = 0
    unsettled: int = 0
    # Gauges, not counters: how many long polls and streams are open right now.
    active_polls: int = 0
    open_streams: int = 0

    @property
    def requests(self) -> int:
        """Billable requests so far."""
        return (
            self.send
            + self.receive
            + self.delete
            + self.change_visibility
            + self.create_queue
            + self.get_queue_url
            + self.delete_queue
        )

    def snapshot(self) -> dict[str, int]:
        return {**asdict(self), "requests": self.requests}


@dataclass
class LimitCounters:
    """Requests refused to protect the process or other users, and for missing trust."""

    # 429: one user's streams at `max_streams_per_user`.
    streams_rejected_user: int = 0
    # 503: the process's streams at `max_streams`.
    streams_rejected_process: int = 0
    # 429: one user's sends faster than `sends_per_second` beyond `send_burst`.
    sends_rejected: int = 0
    # 401: no identity, or a missing, malformed, tampered or expired token.
    auth_rejected: int = 0
    # 403: a cookie-authenticated write that was not JSON or came from another origin.
    csrf_rejected: int = 0

    def snapshot(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class DeliveryCounters:
    """What the routing strategy did with notifications, beyond raw SQS requests.

    Each strategy counts only what applies to it; the rest stay 0.
    """

    # sharded, instance: notifications handed from the process's dispatcher to local streams.
    handed_off: int = 0
    # sharded, instance: a recipient named in a received notification with no stream in this
    # process (sharded: held by another process or connected nowhere, which a process cannot
    # tell apart; instance: the stream closed between the sender's look-up and the hand-off).
    not_held: int = 0
    # sharded: received notifications none of whose recipients had a stream here (dropped).
    dropped: int = 0
    # sharded with several processes: notifications passed on to the shard for the recipients
    # not held here, so that the process holding them receives it (`ShardedRouter.forward`).
    forwarded: int = 0
    # instance: recipients with no live registry entry at send time (nothing queued for them).
    not_connected: int = 0
    # instance: sends to an instance queue that no longer exists (its process died).
    stale_instances: int = 0
    # preprovisioned: recipients skipped at send because no queue was provisioned for them.
    skipped_unprovisioned: int = 0
    # instance: DynamoDB requests to the connection registry (reads, writes, deletes).
    registry_reads: int = 0
    registry_writes: int = 0
    registry_deletes: int = 0
    # instance: queues of expired instances deleted by this process's janitor.
    janitor_queues_deleted: int = 0

    def snapshot(self) -> dict[str, int]:
        return asdict(self)
