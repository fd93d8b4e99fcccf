"""Each strategy's delivery path, as its router and the stream handler run it
(`semichat/server/delivery/routing/`, `semichat/server/api/stream.py`).

- Per-user queues (`per_user_queue`, `preprovisioned`, `fifo`): a send puts one message on each
  recipient's queue; each stream long-polls its user's queue (`wait_seconds`), writes what it
  received and deletes each message before polling again. A user's queue is looked up (and made)
  once per process: GetItem, then CreateQueue and PutItem (`preprovisioned`: GetQueueUrl).
  `fifo` delivers as the others here: one stream per queue polls only after deleting, so a
  group's one-in-flight rule holds nothing back (it does with several tabs).
- `sharded`: one message per shard among the recipients; each process polls every shard and
  hands what it receives to its local streams, deleting the batch beside the next poll.
- `instance`: a registry Query per recipient, one message per instance queue; one dispatcher
  per process; registrations, heartbeats and removals are registry writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator
from typing import Any

import simpy

from semichat.aws.batches import REGISTRATIONS_COMMIT
from semichat.model.chat import GroupCommit, Tab
from semichat.model.inputs import PER_USER
from semichat.model.world import PROCESS, USER, Notice, World

MAX_MESSAGES = 10
REGISTRY_BATCH = 25

# Operations each strategy asks the backend for, which a latency profile must give.
COMMON_OPERATIONS = (
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:TransactWriteItems",
    "dynamodb:BatchWriteItem",
    "sqs:SendMessage",
    "sqs:ReceiveMessage.wake",
)
OPERATIONS = {
    "per_user_queue": (
        *COMMON_OPERATIONS,
        "sqs:DeleteMessage",
        "sqs:CreateQueue",
        "dynamodb:PutItem",
    ),
    "fifo": (*COMMON_OPERATIONS, "sqs:DeleteMessage", "sqs:CreateQueue", "dynamodb:PutItem"),
    "preprovisioned": (*COMMON_OPERATIONS, "sqs:DeleteMessage", "sqs:GetQueueUrl"),
    "sharded": (*COMMON_OPERATIONS, "sqs:DeleteMessageBatch"),
    "instance": (*COMMON_OPERATIONS, "sqs:DeleteMessageBatch"),
}


def shard_of(user_id: str, shards: int) -> int:
    # As `routing/sharded.py` does (sha256): a linear hash such as CRC-32 of consecutive ids
    # lands a conversation's members on too many shards.
    return int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:8], "big") % shards


class Router:
    """Where notifications wait, and how streams get them, for one server process."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.routing = world.setup.routing
        self.queues: dict[Any, simpy.Store] = {}
        self.tabs: dict[int, list[Tab]] = {}
        self.known: set[int] = set()  # users whose queue this process looked up
        self.lookups: dict[int, simpy.Event] = {}
        self.registered: set[int] = set()
        # Registrations that arrive together share BatchWriteItems (`ConnectionRegistry`).
        self.registrations = GroupCommit(world, registry=True, cycle=REGISTRATIONS_COMMIT)
        if self.routing == "sharded":
            for shard in range(world.setup.shards):
                self.queues[shard] = simpy.Store(world.env)
                world.env.process(self._dispatcher(self.queues[shard]))
        elif self.routing == "instance":
            self.queues["instance"] = simpy.Store(world.env)
            world.env.process(self._dispatcher(self.queues["instance"]))
            world.env.process(self._heartbeat())

    # -- per-user queues ------------------------------------------------------------------------

    def queue_url(self, user: int) -> Generator[Any, Any, None]:
        """The router's cached lookup: one per user and process, shared by concurrent callers."""
        if user in self.known:
            return
        w = self.world
        if self.routing == "preprovisioned" and user >= w.activity.users:
            # A group's missing member was never provisioned: each send asks again and skips
            # it (`skipped_unprovisioned`); nothing is cached for a missing queue.
            yield from w.call("sqs:GetQueueUrl")
            return
        if user in self.lookups:
            yield self.lookups[user]
            return
        done = self.lookups[user] = w.env.event()
        if self.routing == "preprovisioned":
            yield from w.call("sqs:GetQueueUrl")
        else:
            w.units("dynamodb:GetItem", read=1)
            yield from w.call("dynamodb:GetItem")
            yield from w.call("sqs:CreateQueue")
            w.units("dynamodb:PutItem", write=1)
            yield from w.call("dynamodb:PutItem")
        self.queues.setdefault(user, simpy.Store(w.env))
        self.known.add(user)
        done.succeed()

    def publish(
        self, members: tuple[int, ...], notice: Notice, u: float | None = None
    ) -> Generator[Any, Any, None]:
        w = self.world
        if self.routing in PER_USER:
            sends = [w.env.process(self._send_to_user(m, notice, u)) for m in members]
        elif self.routing == "sharded":
            by_shard: dict[int, list[int]] = {}
            for m in members:
                shard = shard_of(f"{w.setup.id_prefix}{m}", w.setup.shards)
                by_shard.setdefault(shard, []).append(m)
            sends = [
                w.env.process(self._send_shared(self.queues[s], notice, tuple(us), u))
                for s, us in by_shard.items()
            ]
        else:
            lookups = [w.env.process(self._registry_lookup(u)) for _ in members]
            yield simpy.AllOf(w.env, lookups)
            held = tuple(m for m in members if m in self.registered)
            sends = [w.env.process(self._send_shared(self.queues["instance"], notice, held, u))]
        yield simpy.AllOf(w.env, sends)

    def _registry_lookup(self, u: float | None) -> Generator[Any, Any, None]:
        self.world.units("dynamodb:Query", read=1, registry=True)
        yield from self.world.call("dynamodb:Query", u=u)

    def _send_to_user(
        self, user: int, notice: Notice, u: float | None = None
    ) -> Generator[Any, Any, None]:
        yield from self.queue_url(user)
        if user not in self.known:
            return  # not provisioned: skipped
        yield from self.world.call(
            "sqs:SendMessage", u=u, at_backend=lambda: self._put(user, notice)
        )

    def _put(self, user: int, notice: Notice) -> None:
        # Stored (and visible to the user's long poll) when SQS does the send, before its
        # answer travels back: the wake-up is measured from the message's SentTimestamp.
        self.queues[user].put(notice)
        self._note_depth(self.queues[user])

    def _send_shared(
        self,
        queue: simpy.Store,
        notice: Notice,
        recipients: tuple[int, ...],
        u: float | None = None,
    ) -> Generator[Any, Any, None]:
        copy = Notice(notice.message, notice.conversation, notice.sent_at, recipients)

        def stored() -> None:
            queue.put(copy)
            self._note_depth(queue)

        yield from self.world.call("sqs:SendMessage", u=u, at_backend=stored)

    def _note_depth(self, queue: simpy.Store) -> None:
        t = self.world.tally
        t.depth_max = max(t.depth_max, len(queue.items))

    def _long_poll(self, queue: simpy.Store, share: str) -> Generator[Any, Any, list[Notice]]:
        """One ReceiveMessage: what waits (up to 10), or the first arrival, or nothing."""
        w = self.world
        # The request's way to SQS first: what arrives meanwhile waits for it (and is taken
        # together). Half the round trip of the strategy's delete, a small SQS request whose
        # latency the profile holds.
        delete = "sqs:DeleteMessage" if self.routing in PER_USER else "sqs:DeleteMessageBatch"
        yield w.env.timeout(w.profile.draw_s(delete, w.rng, w.quantile()) / 2)
        get = queue.get()
        yield get | w.env.timeout(w.setup.wait_seconds)
        # `triggered`, not "in the outcome": a message taken at the very instant the wait ran
        # out is this poll's, and cancelling then would lose it.
        if not get.triggered:
            get.cancel()
            w.count("sqs:ReceiveMessage.empty", share)
            return []
        got: list[Notice] = [get.value]  # type: ignore[list-item]

        def take() -> None:
            while queue.items and len(got) < MAX_MESSAGES:
                got.append(queue.items.pop(0))

        # The wake-up: what waits is taken at the backend's turn, then the answer comes back.
        yield from w.answer("sqs:ReceiveMessage.wake", at_backend=take, woken=True)
        # A dispatcher's receive that brings messages is the users' traffic (it grows with
        # them, batched up to 10: linear is an upper bound); only its empty ones are the
        # process's own.
        w.count("sqs:ReceiveMessage.messages", USER)
        return got

    def stream(self, user: int, tab: Tab, until: float) -> Generator[Any, Any, None]:
        """A per-user stream: long poll, write, delete each, until `until`."""
        w = self.world
        yield from self.queue_url(user)
        tab.connected()
        while w.env.now < until:
            got = yield from self._long_poll(self.queues[user], "user")
            for notice in got:
                w.tally.wire(w.env.now, notice.sent_at)
                tab.notify(notice)
                yield from w.call("sqs:DeleteMessage")

    # -- shared queues ----------------------------------------------------------------------------

    def open_local(self, user: int, tab: Tab) -> Generator[Any, Any, None]:
        self.tabs.setdefault(user, []).append(tab)
        if self.routing == "instance" and user not in self.registered:
            self.registered.add(user)
            yield self.registrations.submit()
        tab.connected()

    def close_local(self, user: int) -> Generator[Any, Any, None]:
        self.tabs.pop(user, None)
        if self.routing == "instance" and user in self.registered:
            self.registered.discard(user)
            self.world.units("dynamodb:DeleteItem", write=1, registry=True)
            yield from self.world.call("dynamodb:DeleteItem")

    def _dispatcher(self, queue: simpy.Store) -> Generator[Any, Any, None]:
        w = self.world
        while True:
            got = yield from self._long_poll(queue, PROCESS)
            for notice in got:
                for user in notice.recipients:
                    tabs = self.tabs.get(user, [])
                    if tabs:
                        w.tally.wire(w.env.now, notice.sent_at)
                    for tab in tabs:
                        tab.notify(notice)
            if got:
                w.env.process(w.call("sqs:DeleteMessageBatch", USER))

    def _heartbeat(self) -> Generator[Any, Any, None]:
        w = self.world
        while True:
            yield w.env.timeout(w.setup.registry_refresh_s)
            # Its users' entries and the process's own (`ConnectionRegistry.refresh`).
            n = len(self.registered) + 1
            w.units("dynamodb:BatchWriteItem", write=n, registry=True)
            # BatchWriteItem bills per item; requests per 25 items, a user's share each.
            w.count("dynamodb:BatchWriteItem", "user", -(-n // REGISTRY_BATCH))
