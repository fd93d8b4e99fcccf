"""Typed application state (REFUSALS lives in errors.py, which counts them)."""

from __future__ import annotations

from aiohttp import web

from semichat.aws.clients import AwsClients
from semichat.aws.usage import BackendUsage
from semichat.aws.wire import WireCounters
from semichat.server.chat.service import ChatService
from semichat.server.delivery.orphans import OrphanedPolls
from semichat.server.delivery.routing import NotificationRouter
from semichat.server.errors import REFUSALS as REFUSALS
from semichat.server.faults import Nemesis
from semichat.server.metrics import DeliveryCounters, LimitCounters, SqsCounters
from semichat.server.trust import RequestGuard, SendLimiter, StreamSlots
from semichat.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CLIENTS = web.AppKey("clients", AwsClients)
COUNTERS = web.AppKey("counters", SqsCounters)
LIMIT_COUNTERS = web.AppKey("limit_counters", LimitCounters)
GUARD = web.AppKey("guard", RequestGuard)
SEND_LIMITER = web.AppKey("send_limiter", SendLimiter)
STREAM_SLOTS = web.AppKey("stream_slots", StreamSlots)
DELIVERY = web.AppKey("delivery", DeliveryCounters)
ROUTER = web.AppKey("router", NotificationRouter)
CHAT = web.AppKey("chat", ChatService)
ORPHANS = web.AppKey("orphans", OrphanedPolls)
NEMESIS = web.AppKey("nemesis", Nemesis)
USAGE = web.AppKey("usage", BackendUsage)
# botocore's attempts, retries and the errors it gave up on, beneath the app.
WIRE = web.AppKey("wire", WireCounters)
