"""Notification routing strategies, chosen by name in the settings."""

from __future__ import annotations

from ..settings import Settings
from ..sqs import SqsQueues
from ..store import ChatStore
from .base import Delivery, Notification, NotificationRouter, Subscription
from .per_user_queue import PerUserQueueRouter

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
