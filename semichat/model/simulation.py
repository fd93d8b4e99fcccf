"""One simulated window of one server process: users spawn, chat until `duration_s`, listen
for `drain_s`, then close their streams. What it returns is counted as the server counts it."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from semichat.aws.batches import MARKS_COMMIT
from semichat.model.chat import Conversation, GroupCommit, Tab, message_item_bytes, participants
from semichat.model.inputs import PER_USER, Activity, Setup
from semichat.model.profile import HTTP_SEND, LatencyProfile
from semichat.model.routes import OPERATIONS, Router
from semichat.model.world import Notice, Tally, World

SPAWN_S = 2.0  # `simulate` starts every user within about two seconds (spawn_rate 0)
RECORD_BYTES = 300  # an idempotency record: well under 1 KB, one write unit


@dataclass(frozen=True)
class Window:
    duration_s: float
    drain_s: float = 8.0
    spawn_s: float = SPAWN_S
    # `--spawn-rate R` > 0: Locust's dispatcher starts R users at once each second (a run's
    # connects come in groups of R a second apart), not one every 1/R s.
    spawn_rate: float = 0.0
    # Counts before this time are left out (a steady window without the start-up).
    measure_from_s: float = 0.0
    # Users leave at the end (as a run's do); a steady window keeps them (costed per connect).
    close_at_end: bool = True
    # With --validate: (user, s) when the run's user of that index opened its stream
    # (`opens.py`); each starts then instead of by the spawn rule above.
    opens: tuple[tuple[int, float], ...] = ()

    @property
    def end_s(self) -> float:
        return self.spawn_s + self.duration_s + self.drain_s


@dataclass(frozen=True)
class SimulationResult:
    activity: Activity
    setup: Setup
    window: Window
    tally: Tally
    sends: int


def simulate(
    activity: Activity,
    setup: Setup,
    profile: LatencyProfile,
    window: Window,
    seed: int = 1,
    trace: tuple[list[float], list[float]] | None = None,
    held: dict[str, list[float]] | None = None,
    record_held: bool = False,
) -> SimulationResult:
    """`trace`: a run's slowness over time (`overheads.slowness_trace`), replayed. `held`: a
    first pass's `Tally.held_s` (kept with `record_held`), taken off the profile's draws
    (`World.backend_s`)."""
    activity.check()
    setup.check()
    profile.require(OPERATIONS[setup.routing])
    world = World(activity, setup, profile, seed)
    if trace is not None:
        world.trace = trace
    if held is not None:
        world.held = {op: sorted(times) for op, times in held.items()}
    world.record_held = record_held
    world.message_bytes = message_item_bytes()
    world.record_bytes = RECORD_BYTES
    router = Router(world)
    marks = GroupCommit(world, cycle=MARKS_COMMIT)
    sends = [0]
    size = activity.conversation_size
    opens = dict(window.opens)
    for first in range(0, activity.users, size):
        # The load generator's groups are always full: a last group short of users still
        # names `size` participants, and the missing ones get notifications (and queues).
        conversation = Conversation(tuple(range(first, first + size)), world.env.event())
        for user in range(first, min(first + size, activity.users)):
            world.env.process(
                _user(world, router, marks, conversation, user, window, sends, opens.get(user))
            )
    if window.measure_from_s > 0:
        world.env.process(_baseline(world, window.measure_from_s))
    world.env.run(until=window.end_s)
    return SimulationResult(activity, setup, window, world.tally, sends[0])


def _baseline(world: World, at: float) -> Generator[Any, Any, None]:
    yield world.env.timeout(at)
    world.tally.mark_baseline()


def _user(
    world: World,
    router: Router,
    marks: GroupCommit,
    conversation: Conversation,
    user: int,
    window: Window,
    sends: list[int],
    open_at: float | None = None,
) -> Generator[Any, Any, None]:
    """`open_at`: when the run's user opened its stream (`Window.opens`), its conversation
    made already: the model's is made at once, and the stream opens then."""
    env, rng, a = world.env, world.rng, world.activity
    # Locust starts users one after another over the spawn time; a group's first member
    # creates its conversation, the others wait for it (`ChatUser.join_conversation`).
    if open_at is None and window.spawn_rate > 0:
        yield env.timeout(float(int(user // window.spawn_rate)))
    elif open_at is None:
        yield env.timeout(window.spawn_s * user / a.users)
    if user == conversation.members[0]:
        world.units("dynamodb:PutItem", write=1)
        yield from world.call("dynamodb:PutItem")
        conversation.ready.succeed()
    yield conversation.ready
    if open_at is not None:
        yield env.timeout(max(0.0, open_at - env.now))
    end = window.end_s
    for _ in range(a.tabs):
        tab = Tab(world, conversation)
        if world.setup.routing in PER_USER:
            env.process(router.stream(user, tab, end))
        else:
            env.process(router.open_local(user, tab))
    if world.setup.routing not in PER_USER and window.close_at_end:
        # Its streams close when the run ends, whatever its last send is doing then.
        env.process(_close_at(world, router, user, end))
    if user >= a.chatting:
        return  # an idle user (scenario `idle`): it holds its streams and sends nothing
    yield env.timeout(rng.uniform(0, a.send_interval_s))
    # The sending window is `duration_s` from the run's start, spawning included.
    while env.now < window.duration_s:
        sends[0] += 1
        # Locust's next wait starts once the send is answered.
        yield env.process(_send(world, router, marks, conversation, user))
        yield env.timeout(rng.uniform(0.5, 1.5) * a.send_interval_s)


def _close_at(world: World, router: Router, user: int, at: float) -> Generator[Any, Any, None]:
    yield world.env.timeout(max(0.0, at - world.env.now - 1e-6))
    yield from router.close_local(user)


def _send(
    world: World, router: Router, marks: GroupCommit, conversation: Conversation, user: int
) -> Generator[Any, Any, None]:
    """`ChatService.send`: participants, the transaction, the fan-out, the mark."""
    env = world.env
    started = env.now
    # The request's time beyond its backend calls, half before them and half after.
    # One quantile for the whole request: on a loaded machine a request's parts are slow
    # together (independent draws would thin the tail and widen the median of their sum).
    u = world.quantile()
    overhead = world.profile.overhead_s(HTTP_SEND, world.rng, u)
    yield env.timeout(overhead / 2)
    yield from participants(world, conversation, u)
    world.units("dynamodb:TransactWriteItems", write=2 * 2)  # two items, transactional
    yield from world.call("dynamodb:TransactWriteItems", u=u)
    message = len(world.messages)
    world.messages.append(message)
    conversation.stored.append((message, env.now, started))
    notice = Notice(message, id(conversation), started)
    yield from router.publish(conversation.members, notice, u)
    yield marks.submit()
    yield env.timeout(overhead / 2)
    world.tally.send_s.append(env.now - started)
