"""The users' side, as the `chat` scenario's clients behave (`semichat/harness/loadgen/`):
each user in a conversation of `conversation_size`, holding `tabs` tabs, sends every 0.5 to 1.5
send intervals; each tab refetches history when told of a message its view lacks (reads that
would overlap are folded into one, as `catch_up` does) and at each connect.

And the server's side of a send (`ChatService.send`): participants read once per conversation
and process (then cached), the message and its idempotency record in one transaction, the
strategy's fan-out, and the `notified` mark, group-committed with other sends' marks.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import simpy

from semichat.aws.capacity import item_size, read_units, write_units
from semichat.model.profile import HTTP_HISTORY
from semichat.model.world import Notice, World

INITIAL_HISTORY = 50  # loadgen/view.py
CATCH_UP_FIRST_PAGE = 5
MARKS_PER_BATCH = 25  # BatchWriteItem's limit (aws/batches.py)


def message_item_bytes(user_chars: int = 21, text_chars: int = 60) -> int:
    """A stored message's size (store.py's attributes), with the load generator's ids."""
    return item_size(
        {
            "conversationId": {"S": "c" * 32},
            "sortKey": {"S": "s" * 60},
            "messageId": {"S": "m" * 32},
            "senderId": {"S": "u" * user_chars},
            "text": {"S": "t" * text_chars},
            "createdAt": {"S": "d" * 27},
        }
    )


@dataclass
class Conversation:
    members: tuple[int, ...]
    ready: simpy.Event  # created (its first member's PutItem answered)
    # (message, stored at, send started at), in store order.
    stored: list[tuple[int, float, float]] = field(default_factory=list)
    participants_cached: bool = False
    participants_reading: simpy.Event | None = None  # the read under way, which others await


class Tab:
    """One client: its stream's notifications and its view, refetched from history."""

    def __init__(self, world: World, conversation: Conversation) -> None:
        self.world = world
        self.conversation = conversation
        self.seen: set[int] = set()
        self.dirty = world.env.event()
        self.loaded = False
        world.env.process(self._view_loop())

    def notify(self, notice: Notice) -> None:
        if notice.message not in self.seen and not self.dirty.triggered:
            self.dirty.succeed()

    def connected(self) -> None:
        if not self.dirty.triggered:
            self.dirty.succeed()

    def _view_loop(self) -> Generator[Any, Any, None]:
        w = self.world
        while True:
            yield self.dirty
            self.dirty = w.env.event()
            limit = CATCH_UP_FIRST_PAGE if self.loaded else INITIAL_HISTORY
            u = w.quantile()
            overhead = w.profile.overhead_s(HTTP_HISTORY, w.rng, u)
            yield w.env.timeout(overhead / 2)
            asked = w.env.now
            yield from history_read(w, self.conversation, u)
            yield w.env.timeout(overhead / 2)
            # A strongly consistent read shows what was committed before it was asked.
            read_at = asked
            page = [m for m in self.conversation.stored if m[1] <= read_at][-(limit + 1) :]
            w.units("dynamodb:Query", read=read_units([w.message_bytes] * len(page), True))
            for message, _, sent_at in page:
                if message not in self.seen:
                    self.seen.add(message)
                    if self.loaded:
                        w.tally.view(w.env.now, sent_at)
            # Messages stored before the first read are history, not deliveries.
            self.loaded = True


def history_read(
    world: World, conversation: Conversation, u: float | None = None
) -> Generator[Any, Any, None]:
    yield from participants(world, conversation, u)
    yield from world.call("dynamodb:Query", u=u)


def participants(
    world: World, conversation: Conversation, u: float | None = None
) -> Generator[Any, Any, None]:
    # Cached once answered, and single-flight (`ChatService.participants`): requests that miss
    # while a read is under way wait for it.
    if conversation.participants_cached:
        return
    if conversation.participants_reading is not None:
        yield conversation.participants_reading
        return
    conversation.participants_reading = world.env.event()
    world.units("dynamodb:GetItem", read=1)
    yield from world.call("dynamodb:GetItem", u=u)
    conversation.participants_cached = True
    conversation.participants_reading.succeed()


class GroupCommit:
    """`batches.GroupCommit`: the first mark is written at once, with those submitted in the
    same loop iteration; marks that arrive meanwhile go out together in the next
    BatchWriteItem (up to 25 a request).

    `cycle`: the profile's operation holding the server's timing of the whole write cycle
    (`batches.MARKS_COMMIT`), when the profile has it (a run's does): the window in which
    the next write's marks gather. It holds the loop's turns that start the write's task
    and hear it ended, which the request's latency does not. Without it (a profile of AWS,
    or a run made before the server timed it), the request's latency and the modelled loop."""

    def __init__(self, world: World, registry: bool = False, cycle: str | None = None) -> None:
        self.world = world
        self.registry = registry
        self.cycle = cycle if cycle in world.profile.operations else None
        self.pending: list[simpy.Event] = []
        self.busy = False

    def submit(self) -> simpy.Event:
        done = self.world.env.event()
        self.pending.append(done)
        if not self.busy:
            self.world.env.process(self._write())
        return done

    def _write(self) -> Generator[Any, Any, None]:
        self.busy = True
        # `asyncio.sleep(0)` in `_flush`: the submissions of the same loop iteration (the
        # answers the loop handled together, `cpu.py`) join the first write.
        yield self.world.cpu.iteration_end()
        while self.pending:
            batch, self.pending = self.pending[:MARKS_PER_BATCH], self.pending[MARKS_PER_BATCH:]
            units = len(batch) * write_units(self.world.record_bytes)
            self.world.units("dynamodb:BatchWriteItem", write=units, registry=self.registry)
            yield from self._cycle()
            for done in batch:
                done.succeed()
        self.busy = False

    def _cycle(self) -> Generator[Any, Any, None]:
        w = self.world
        if self.cycle is None:
            yield from w.call("dynamodb:BatchWriteItem")
            return
        w.count("dynamodb:BatchWriteItem")
        yield w.env.timeout(w.profile.draw_s(self.cycle, w.rng, w.quantile()))
        # Its answer still takes the loop a turn, which the others' answers wait behind.
        w.cpu.handle()
