"""The chat domain: who may do what in a conversation, and what a send stores and announces.

Sending is store-then-notify. The message and its idempotency record are written in one
transaction; the record then remembers whether the notification fan-out finished, so a retry
with the same key announces a message whose first attempt stored it but failed to fan out,
while retries that arrive together announce nothing twice (a short lease decides who fans out).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from semichat.server.chat.marks import NotifiedMarks
from semichat.server.chat.payloads import HistoryQuery, SendCommand
from semichat.server.chat.store import (
    ChatStore,
    IdempotencyRecord,
    InvalidCursor,
    Message,
    decode_cursor,
    encode_cursor,
    idempotency_record,
)
from semichat.server.delivery.routing import Notification, NotificationRouter
from semichat.server.errors import BadRequest, Forbidden, NotFound, Unavailable, Unprocessable
from semichat.server.identity import USER_ID_RE
from semichat.server.locks import KeyedLocks
from semichat.settings import Settings

log = logging.getLogger("semichat.chat")

# Demo mode's shared room: whoever reads or sends to it joins it, so all read each other.
SUPPORT_CONVERSATION = "support-demo"
SUPPORT_USER = "support"
# Each user's own support conversation, `support:<user>`: that user and `support` only.
SUPPORT_PREFIX = "support:"
IDEMPOTENCY_TTL_S = 24 * 3600
MEMBERS_CACHED = 10_000


@dataclass(frozen=True)
class SendResult:
    message_id: str
    conversation_id: str
    sender_id: str
    created_at: str
    duplicate: bool

    def to_json(self) -> dict[str, object]:
        return {
            "messageId": self.message_id,
            "conversationId": self.conversation_id,
            "senderId": self.sender_id,
            "createdAt": self.created_at,
            "duplicate": self.duplicate,
        }


def iso_now(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def content_hash(conversation_id: str, text: str) -> str:
    return hashlib.sha256(f"{conversation_id}\0{text}".encode()).hexdigest()


def support_conversation_id(user_id: str) -> str:
    return SUPPORT_PREFIX + user_id


def support_owner(conversation_id: str) -> str | None:
    """The user whose support conversation this is, or None for any other conversation."""
    if conversation_id.startswith(SUPPORT_PREFIX):
        owner = conversation_id[len(SUPPORT_PREFIX) :]
        return owner if USER_ID_RE.fullmatch(owner) else None
    return None


class ChatService:
    def __init__(
        self,
        store: ChatStore,
        router: NotificationRouter,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        on_mark_cycle: Callable[[float], None] | None = None,
    ) -> None:
        self._store = store
        # `on_mark_cycle(ms)`: each marks write's cycle (`GroupCommit`), for the metrics.
        self._marks = NotifiedMarks(store.put_records, on_mark_cycle)
        self._router = router
        self._settings = settings
        self._clock = clock
        self._sending = KeyedLocks()
        # Only where identities are claimed anyway: with verified ones it would leak.
        self._shared_support_room = settings.auth == "demo"
        # Participants of ordinary conversations, which never change once created (support
        # conversations, which users join, are not kept). Every send and every history read
        # asked DynamoDB for them: with 100 chatting users, 4 of the about 13 backend
        # requests per message (`semichat simulate --scenario chat --users 100`).
        self._members: dict[str, frozenset[str]] = {}
        self._reading = KeyedLocks()
        # Fan-out leases this process took, failed to fan out under, and could not give back
        # (DynamoDB refused the release): idempotency id -> the lease's end, in ms. A retry
        # here may take such a lease over at once, rather than answer the message done while
        # nobody announces it until the lease runs out.
        self._abandoned: dict[str, int] = {}

    def _remember(self, conversation_id: str, members: set[str]) -> None:
        if len(self._members) >= MEMBERS_CACHED:
            del self._members[next(iter(self._members))]  # the oldest: dicts keep order
        self._members[conversation_id] = frozenset(members)

    async def create_conversation(
        self, creator: str, participants: list[str]
    ) -> tuple[str, list[str]]:
        members = {creator, *participants}
        conversation_id = uuid.uuid4().hex
        await self._store.create_conversation(conversation_id, members, iso_now(self._clock()))
        return conversation_id, sorted(members)

    async def participants(self, user_id: str, conversation_id: str) -> set[str]:
        """The conversation's participants, once the user is known to be one of them."""
        if self._shared_support_room and conversation_id == SUPPORT_CONVERSATION:
            return await self._store.join_conversation(
                conversation_id, {user_id, SUPPORT_USER}, iso_now(self._clock())
            )
        owner = support_owner(conversation_id)
        if owner is not None:
            return await self._support_participants(user_id, conversation_id, owner)
        cached = self._members.get(conversation_id)
        if cached is None:
            # One read of a conversation at a time: requests that miss together (its members
            # connecting at once) wait for that read rather than each make their own.
            async with self._reading.hold(conversation_id):
                cached = self._members.get(conversation_id)
                if cached is None:
                    found = await self._store.get_participants(conversation_id)
                    if found is None:
                        raise NotFound(f"conversation {conversation_id} does not exist")
                    self._remember(conversation_id, found)
                    cached = frozenset(found)
        members = set(cached)
        if user_id not in members:
            raise Forbidden("you are not a participant of this conversation")
        return members

    async def _support_participants(
        self, user_id: str, conversation_id: str, owner: str
    ) -> set[str]:
        if user_id not in (owner, SUPPORT_USER):
            raise Forbidden("this is another user's support conversation")
        members = await self._store.get_participants(conversation_id)
        if members is None:
            # Created on first use by either side; the update is idempotent under races.
            members = await self._store.join_conversation(
                conversation_id, {owner, SUPPORT_USER}, iso_now(self._clock())
            )
        return members

    async def send(self, sender: str, cmd: SendCommand) -> SendResult:
        # DynamoDB's conditional transaction is what keeps concurrent retries from storing
        # twice, across processes. Within one process they also queue here: moto checks a
        # transaction's conditions without a lock (two racing retries both stored, in CI),
        # and a retry that waits for the first attempt spares DynamoDB a losing transaction.
        async with self._sending.hold(f"{sender}#{cmd.idempotency_key}"):
            return await self._send(sender, cmd)

    async def _send(self, sender: str, cmd: SendCommand) -> SendResult:
        members = await self.participants(sender, cmd.conversation_id)
        now = self._clock()
        message = Message(
            message_id=uuid.uuid4().hex,
            conversation_id=cmd.conversation_id,
            sender_id=sender,
            text=cmd.text,
            created_at=iso_now(now),
        )
        idempotency_id = f"{sender}#{cmd.idempotency_key}"
        record = idempotency_record(
            message,
            idempotency_id,
            content_hash(cmd.conversation_id, cmd.text),
            lease_until_ms=self._lease_until_ms(now),
            ttl=int(now) + IDEMPOTENCY_TTL_S,
        )
        existing = await self._store.store_message(message, record)
        if existing is not None:
            return await self._replay(sender, cmd, existing, members)
        await self._fan_out(
            idempotency_id, members, message.message_id, cmd.conversation_id, record
        )
        return SendResult(
            message.message_id, cmd.conversation_id, sender, message.created_at, duplicate=False
        )

    async def _replay(
        self, sender: str, cmd: SendCommand, record: IdempotencyRecord, members: set[str]
    ) -> SendResult:
        if record.conversation_id != cmd.conversation_id or record.text_hash != content_hash(
            cmd.conversation_id, cmd.text
        ):
            raise Unprocessable(
                "idempotencyKey was already used for a different message by this sender"
            )
        now = self._clock()
        # Leases only grow, so "older than now, or no newer than the one abandoned here" takes
        # over exactly an expired lease or ours, never one another attempt took since.
        claimable_ms = max(int(now * 1000), self._abandoned.pop(record.idempotency_id, -1) + 1)
        lease_ms = self._lease_until_ms(now)
        if not record.notified and await self._store.claim_fanout(
            record.idempotency_id, claimable_ms, lease_ms
        ):
            log.info("re-announcing a message whose first fan-out did not finish")
            await self._fan_out(
                record.idempotency_id,
                members,
                record.message_id,
                record.conversation_id,
                lease_ms=lease_ms,
            )
        return SendResult(
            record.message_id, record.conversation_id, sender, record.created_at, duplicate=True
        )

    async def _fan_out(
        self,
        idempotency_id: str,
        members: set[str],
        message_id: str,
        conversation_id: str,
        record: dict[str, Any] | None = None,
        lease_ms: int = 0,
    ) -> None:
        """Announce to every member, then mark the record notified: together with other sends'
        marks when this send stored `record` itself, alone when it re-announces a retry's
        (under the lease it claimed, ending at `lease_ms`)."""
        # The sender is a recipient too: its other tabs and devices must hear of the message.
        try:
            await self._router.publish(sorted(members), Notification(message_id, conversation_id))
        except Exception as exc:
            log.exception("fan-out failed", extra={"messageId": message_id})
            try:
                await self._store.release_fanout(idempotency_id)
            except Exception:
                # The lease then runs out: a retry elsewhere takes over after it; one here takes
                # it over at once.
                log.warning("could not release the fan-out lease", exc_info=True)
                self._abandon(idempotency_id, record["fanoutLeaseUntilMs"] if record else lease_ms)
            # Counted: each such answer's retry announces again to members already told.
            raise Unavailable(
                "the message is stored but not every recipient was notified; "
                "retry with the same idempotency key",
                retry_after=1,
                refusal="fanout",
            ) from exc
        if record is not None:
            await self._marks.mark(record)
        else:
            await self._store.mark_notified(idempotency_id)

    def _abandon(self, idempotency_id: str, lease_ms: int) -> None:
        if len(self._abandoned) >= MEMBERS_CACHED:
            del self._abandoned[next(iter(self._abandoned))]  # the oldest
        self._abandoned[idempotency_id] = lease_ms

    def _lease_until_ms(self, now: float) -> int:
        return int((now + self._settings.fanout_lease_seconds) * 1000)

    async def history(self, user_id: str, query: HistoryQuery) -> tuple[list[Message], str | None]:
        await self.participants(user_id, query.conversation_id)
        try:
            before = decode_cursor(query.cursor) if query.cursor else None
        except InvalidCursor as exc:
            raise BadRequest(str(exc)) from None
        messages, next_key = await self._store.history(query.conversation_id, query.limit, before)
        return messages, (encode_cursor(next_key) if next_key else None)
