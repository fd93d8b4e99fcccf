"""Notification routing strategies, chosen by name in the settings."""

from __future__ import annotations

from collections.abc import Callable

from semichat.server.delivery.routing.base import (
    Delivery,
    Notification,
    NotificationRouter,
    QueueDirectory,
    Subscription,
)
from semichat.server.delivery.routing.fifo import FifoRouter
from semichat.server.delivery.routing.instance import InstanceRouter
from semichat.server.delivery.routing.per_user_queue import PerUserQueueRouter
from semichat.server.delivery.routing.preprovisioned import PreprovisionedRouter
from semichat.server.delivery.routing.sharded import ShardedRouter
from semichat.server.delivery.sqs import SqsQueues
from semichat.server.metrics import DeliveryCounters
from semichat.settings import Settings

__all__ = [
    "Delivery",
    "Notification",
    "NotificationRouter",
    "Subscription",
    "make_router",
    "router_names",
    "stream_holds_poll",
]

_ROUTERS: dict[str, type[NotificationRouter]] = {
    cls.name: cls  # type: ignore[misc]
    for cls in (PerUserQueueRouter, PreprovisionedRouter, FifoRouter, ShardedRouter, InstanceRouter)
}


def router_names() -> list[str]:
    return sorted(_ROUTERS)


def stream_holds_poll(routing: str) -> bool:
    """Whether a stream of this routing holds a long poll of its own (True for unknown names:
    the stricter cap, and `make_router` refuses them anyway)."""
    cls = _ROUTERS.get(routing)
    return True if cls is None else bool(cls.stream_holds_poll)


def make_router(
    settings: Settings,
    queues: SqsQueues,
    store: QueueDirectory,
    counters: DeliveryCounters | None = None,
    on_registration_cycle: Callable[[float], None] | None = None,
) -> NotificationRouter:
    """`on_registration_cycle(ms)`: the `instance` registry's group-commit cycles, timed."""
    try:
        cls = _ROUTERS[settings.routing]
    except KeyError:
        raise ValueError(
            f"unknown routing {settings.routing!r}; choose one of {router_names()}"
        ) from None
    counters = counters or DeliveryCounters()
    if cls is InstanceRouter:
        return InstanceRouter(queues, store, settings, counters, on_registration_cycle)
    return cls(queues, store, settings, counters)  # type: ignore[call-arg]
