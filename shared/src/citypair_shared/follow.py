"""Followers: every process applies every event of a type to what it keeps in memory.

A durable consumer hands each event to one replica (which writes the database once); a follower is an
ephemeral consumer of this process alone, so each replica sees every event too. Followers apply events
to memory only, and must be idempotent: they may see an event the database (and the memory loaded from
it) already holds.
"""

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from citypair_shared.bus import FETCH_BATCH, Bus, patiently
from citypair_shared.events import CloudEvent, stream_of
from citypair_shared.logging import get_logger

log = get_logger(__name__)

# A follower's consumer outlives a lost connection this long; a process that is gone loses it then.
CONSUMER_IDLE_SECONDS = 120

Apply = Callable[[CloudEvent], None]


@dataclass(frozen=True)
class BatchApply:
    """What a follower applies a fetched batch with in one call (e.g. one index update for all its cities); it
    must leave what applying them one at a time, in order, would. Called with one event it is an `Apply`."""

    apply_many: Callable[[list[CloudEvent]], None]

    def __call__(self, event: CloudEvent) -> None:
        self.apply_many([event])


class Follower:
    """An ephemeral pull consumer of one event type, re-created after the last event applied if it is lost.

    Each consumer gets a new name and asks for its event type in its create request, so the bus can let a
    service create exactly that and nothing else (see bus_access).
    """

    def __init__(self, bus: Bus, event_type: str, apply: Apply, *, start: dict | None = None):
        self.bus = bus
        self.event_type = event_type
        self.stream = stream_of(event_type)
        self.apply = apply
        # Where the first consumer starts (deliver policy options); later ones resume after the last applied.
        self.start = start or {"deliver_policy": DeliverPolicy.NEW}
        self.next_sequence: int | None = None
        self.waiting = 0
        self.sub = None
        # Set while the last fetch left nothing behind it in the stream (see `Runtime.followers_first`).
        self.caught_up = asyncio.Event()

    async def open(self) -> None:
        """Create the consumer at its start position: it holds its place from now, whatever happens next."""
        self.waiting = await self._subscribe()

    async def catch_up(self) -> None:
        """Apply what was in the stream when the consumer was opened (later events come with `follow`)."""
        if self.sub is None:
            await self.open()
        while self.waiting > 0:
            batch = await patiently(lambda: self.sub.fetch(min(self.waiting, FETCH_BATCH), timeout=5))
            self.waiting -= self._apply(batch)
        self.caught_up.set()

    async def follow(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if self.sub is None:
                    await self._subscribe()
                msgs = await self.sub.fetch(FETCH_BATCH, timeout=1)
            except TimeoutError:  # nothing new (nats-py's own, or asyncio's when a fetch's deadline runs out)
                self.caught_up.set()
                continue
            except Exception as exc:  # the connection, or the consumer with it, was lost: resume in a new one
                log.warning("follower.interrupted", event_type=self.event_type, error=repr(exc))
                self.caught_up.set()  # one that cannot fetch holds nothing back
                await self._drop()
                await asyncio.sleep(0.5)
                continue
            self._apply(msgs)

    async def _subscribe(self) -> int:
        """A new consumer from where this follower is; returns how many events it has waiting."""
        if self.next_sequence is None:
            position = self.start
        else:
            position = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": self.next_sequence}
        config = ConsumerConfig(
            name=f"follow-{uuid.uuid4().hex}",
            filter_subject=self.event_type,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=CONSUMER_IDLE_SECONDS,
            mem_storage=True,
            **position,
        )
        info = await patiently(lambda: self.bus.js.add_consumer(self.stream, config=config))
        # The stream's position at creation: a consumer lost before its first event resumes from here.
        self.next_sequence = info.delivered.stream_seq + 1
        self.sub = await self.bus.js.pull_subscribe_bind(info.name, stream=self.stream)
        return info.num_pending

    async def _drop(self) -> None:
        sub, self.sub = self.sub, None
        if sub is not None:
            with contextlib.suppress(Exception):  # its consumer may be gone with the connection
                await sub.unsubscribe()

    def _apply(self, msgs: list) -> int:
        """Apply a fetched batch: in one call with a `BatchApply`, else (or if that finds a bad event) one by one."""
        if not msgs:
            self.caught_up.set()
            return 0
        self.next_sequence = msgs[-1].metadata.sequence.stream + 1
        if msgs[-1].metadata.num_pending:
            self.caught_up.clear()
        else:
            self.caught_up.set()
        events = []
        for msg in msgs:
            try:
                events.append(CloudEvent.model_validate_json(msg.data))
            except ValueError as exc:  # a bad event is the producer's bug; one must not stop the rest
                log.warning("follower.bad_event", event_type=self.event_type, error=repr(exc))
        if isinstance(self.apply, BatchApply):
            try:
                self.apply.apply_many(events)
                return len(msgs)
            except ValueError:  # one bad event in the batch: find it one at a time
                pass
        for event in events:
            try:
                self.apply(event)
            except ValueError as exc:
                log.warning("follower.bad_event", event_type=self.event_type, error=repr(exc))
        return len(msgs)
