"""Typed application state."""

from __future__ import annotations

from aiohttp import web

from .aws import AwsClients
from .chat import ChatService
from .metrics import SqsCounters
from .orphans import OrphanedPolls
from .routing import NotificationRouter
from .settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CLIENTS = web.AppKey("clients", AwsClients)
COUNTERS = web.AppKey("counters", SqsCounters)
ROUTER = web.AppKey("router", NotificationRouter)
CHAT = web.AppKey("chat", ChatService)
ORPHANS = web.AppKey("orphans", OrphanedPolls)
