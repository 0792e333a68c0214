"""The revocation follower every service runs: identity's token revocations, applied to its token checks."""

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from citypair_shared.bus import FETCH_BATCH, Bus
from citypair_shared.events import CloudEvent, TokensRevoked, stream_of
from citypair_shared.logging import get_logger

log = get_logger(__name__)

# Access tokens live at most 15 minutes, so older revocations cannot matter: each start replays this
# window instead of keeping state on disk.
REVOCATION_REPLAY = timedelta(minutes=16)
REVOCATION_STREAM = stream_of(TokensRevoked.event_type)
# A follower's consumer outlives a lost connection this long; a process that is gone loses it then.
CONSUMER_IDLE_SECONDS = 60

Revoke = Callable[[str, int], None]


async def follow_revocations(bus: Bus, revoke: Revoke, stop: asyncio.Event) -> asyncio.Task:
    """Apply the revocations of the last `REVOCATION_REPLAY`, then return the task that applies the rest
    as they come, until `stop`: a service takes requests only once it knows every revocation that matters."""
    follower = RevocationFollower(bus, revoke)
    await follower.catch_up()
    return asyncio.create_task(follower.follow(stop), name="revocations")


class RevocationFollower:
    """An ephemeral pull consumer of this process, re-created after the last revocation applied if it is lost.

    Each consumer gets a new name and asks for the revocation subject in its create request, so the bus
    can let every service create exactly that on identity's stream and nothing else (see bus_access).
    """

    def __init__(self, bus: Bus, revoke: Revoke):
        self.bus = bus
        self.revoke = revoke
        self.next_sequence: int | None = None
        self.sub = None

    async def catch_up(self) -> None:
        pending = await self._subscribe()
        while pending > 0:
            pending -= self._apply(await self.sub.fetch(min(pending, FETCH_BATCH), timeout=5))

    async def follow(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if self.sub is None:
                    await self._subscribe()
                msgs = await self.sub.fetch(FETCH_BATCH, timeout=1)
            except TimeoutError:  # nothing new (nats-py's own, or asyncio's when a fetch's deadline runs out)
                continue
            except Exception as exc:  # the connection, or the consumer with it, was lost: resume in a new one
                log.warning("auth.revocations_interrupted", error=repr(exc))
                await self._drop()
                await asyncio.sleep(0.5)
                continue
            self._apply(msgs)

    async def _subscribe(self) -> int:
        """A new consumer from where this follower is; returns how many revocations it has waiting."""
        if self.next_sequence is None:
            start = (datetime.now(UTC) - REVOCATION_REPLAY).isoformat()
            position = {"deliver_policy": DeliverPolicy.BY_START_TIME, "opt_start_time": start}
        else:
            position = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": self.next_sequence}
        config = ConsumerConfig(
            name=f"revocations-{uuid.uuid4().hex}",
            filter_subject=TokensRevoked.event_type,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=CONSUMER_IDLE_SECONDS,
            mem_storage=True,
            **position,
        )
        info = await self.bus.js.add_consumer(REVOCATION_STREAM, config=config)
        self.sub = await self.bus.js.pull_subscribe_bind(info.name, stream=REVOCATION_STREAM)
        return info.num_pending

    async def _drop(self) -> None:
        sub, self.sub = self.sub, None
        if sub is not None:
            with contextlib.suppress(Exception):  # its consumer may be gone with the connection
                await sub.unsubscribe()

    def _apply(self, msgs: list) -> int:
        for msg in msgs:
            self.next_sequence = msg.metadata.sequence.stream + 1
            try:
                data = TokensRevoked.model_validate(CloudEvent.model_validate_json(msg.data).data)
            except ValueError as exc:
                log.warning("auth.bad_revocation", error=repr(exc))
                continue
            self.revoke(data.user_id, data.min_token_version)
        return len(msgs)
