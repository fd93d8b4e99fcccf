"""Notification routing strategies, chosen by name in the settings."""

from __future__ import annotations

from semichat.server.routing.base import Delivery, Notification, NotificationRouter, Subscription
from semichat.server.routing.per_user_queue import PerUserQueueRouter
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

_ROUTERS = {PerUserQueueRouter.name: PerUserQueueRouter}


def router_names() -> list[str]:
    return sorted(_ROUTERS)


def make_router(settings: Settings, queues: SqsQueues, store: ChatStore) -> NotificationRouter:
    try:
        cls = _ROUTERS[settings.routing]
    except KeyError:
        raise ValueError(
            f"unknown routing {settings.routing!r}; choose one of {router_names()}"
        ) from None
    return cls(queues, store, settings)
