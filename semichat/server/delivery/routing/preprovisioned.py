"""Per-user queues made ahead by `semichat provision --users`: the server only looks them up.

The server's role has `sqs:GetQueueUrl` instead of `sqs:CreateQueue`, so it can neither create
a queue for an unknown user nor re-create one deleted behind its back. A user without a queue
gets 403 on the stream (`NotProvisioned`); a send whose recipient has no queue still stores
the message and answers 201, and the skipped notification is counted
(`skipped_unprovisioned` in `/metrics`): that recipient sees it in history only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from semichat.server.delivery.routing.base import Notification
from semichat.server.delivery.routing.per_user_queue import PerUserQueueRouter
from semichat.server.delivery.sqs import is_missing_queue
from semichat.server.errors import Forbidden

log = logging.getLogger("semichat.routing")


class NotProvisioned(Forbidden):
    """403: this user has no queue, and the server may not create one."""

    def __init__(self, user_id: str) -> None:
        super().__init__(
            f"no notification queue is provisioned for user {user_id!r} (routing "
            f"preprovisioned); an operator runs `semichat provision --users {user_id}`"
        )


class PreprovisionedRouter(PerUserQueueRouter):
    name = "preprovisioned"

    async def _lookup(self, user_id: str) -> str:
        # GetQueueUrl, cached by queue_url(): one request per user and process.
        try:
            url = await self._queues.get_queue_url(self.queue_name(user_id))
        except Exception as exc:
            if is_missing_queue(exc):
                raise NotProvisioned(user_id) from None
            raise
        self._urls[user_id] = url
        return url

    async def recreate(self, user_id: str) -> str:
        """A queue deleted behind the app stays deleted: forget it, look it up once more."""
        self._urls.pop(user_id, None)
        log.warning("queue of %s is gone", user_id, extra={"userId": user_id})
        return await self._lookup(user_id)

    async def _send(self, user_id: str, notification: Notification) -> None:
        try:
            await super()._send(user_id, notification)
        except NotProvisioned:
            self._counters.skipped_unprovisioned += 1

    async def provision_users(self, users: Sequence[str], concurrency: int) -> dict[str, str]:
        """The deployer's side (its role may create queues): the per-user queue's own code."""
        limit = asyncio.Semaphore(concurrency)
        create = super()._lookup

        async def one(user: str) -> tuple[str, str]:
            async with limit:
                return user, await create(user)

        return dict(await asyncio.gather(*(one(u) for u in users)))
