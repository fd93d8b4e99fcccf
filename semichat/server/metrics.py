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
        )

    def snapshot(self) -> dict[str, int]:
        return {**asdict(self), "requests": self.requests}
