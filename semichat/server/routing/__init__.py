"""Notification routing strategies, chosen by name in the settings."""

from __future__ import annotations

from semichat.server.metrics import DeliveryCounters
from semichat.server.routing.base import Delivery, Notification, NotificationRouter, Subscription
from semichat.server.routing.fifo import FifoRouter
from semichat.server.routing.instance import InstanceRouter
from semichat.server.routing.per_user_queue import PerUserQueueRouter
from semichat.server.routing.preprovisioned import PreprovisionedRouter
from semichat.server.routing.sharded import ShardedRouter
from semichat.server.sqs import SqsQueues
from semichat.server.store import ChatStore
from semichat.settings import Settings

__all__ = [
    "Delivery",
    "Notification",
    "NotificationRouter",
    "Subscription",
    "make_router",
    "router_names",
]

_ROUTERS: dict[str, type[NotificationRouter]] = {
    cls.name: cls  # type: ignore[misc]
    for cls in (PerUserQueueRouter, PreprovisionedRouter, FifoRouter, ShardedRouter, InstanceRouter)
}


def router_names() -> list[str]:
    return sorted(_ROUTERS)


def make_router(
    settings: Settings,
    queues: SqsQueues,
    store: ChatStore,
    counters: DeliveryCounters | None = None,
) -> NotificationRouter:
    try:
        cls = _ROUTERS[settings.routing]
    except KeyError:
        raise ValueError(
            f"unknown routing {settings.routing!r}; choose one of {router_names()}"
        ) from None
    return cls(queues, store, settings, counters or DeliveryCounters())  # type: ignore[call-arg]
