"""Typed application state (REFUSALS lives in errors.py, which counts them)."""

from __future__ import annotations

from aiohttp import web

from semichat.aws.clients import AwsClients
from semichat.server.chat import ChatService
from semichat.server.errors import REFUSALS as REFUSALS
from semichat.server.metrics import SqsCounters
from semichat.server.nemesis import Nemesis
from semichat.server.orphans import OrphanedPolls
from semichat.server.routing import NotificationRouter
from semichat.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CLIENTS = web.AppKey("clients", AwsClients)
COUNTERS = web.AppKey("counters", SqsCounters)
ROUTER = web.AppKey("router", NotificationRouter)
CHAT = web.AppKey("chat", ChatService)
ORPHANS = web.AppKey("orphans", OrphanedPolls)
NEMESIS = web.AppKey("nemesis", Nemesis)
