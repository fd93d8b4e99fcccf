"""Typed application state."""

from __future__ import annotations

from aiohttp import web

from semichat.aws.clients import AwsClients
from semichat.server.chat import ChatService
from semichat.server.metrics import DeliveryCounters, SqsCounters
from semichat.server.orphans import OrphanedPolls
from semichat.server.routing import NotificationRouter
from semichat.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CLIENTS = web.AppKey("clients", AwsClients)
COUNTERS = web.AppKey("counters", SqsCounters)
DELIVERY = web.AppKey("delivery", DeliveryCounters)
ROUTER = web.AppKey("router", NotificationRouter)
CHAT = web.AppKey("chat", ChatService)
ORPHANS = web.AppKey("orphans", OrphanedPolls)
