"""The revocation follower every service runs: identity's token revocations, applied to its token checks."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from nats.js.api import DeliverPolicy

from citypair_shared.bus import Bus
from citypair_shared.events import CloudEvent, TokensRevoked, stream_of
from citypair_shared.follow import Follower

# Access tokens live at most 15 minutes, so older revocations cannot matter: each start replays this
# window instead of keeping state on disk.
REVOCATION_REPLAY = timedelta(minutes=16)
REVOCATION_STREAM = stream_of(TokensRevoked.event_type)

Revoke = Callable[[str, int], None]


async def follow_revocations(bus: Bus, revoke: Revoke, stop: asyncio.Event) -> asyncio.Task:
    """Apply the revocations of the last `REVOCATION_REPLAY`, then return the task that applies the rest
    as they come, until `stop`: a service takes requests only once it knows every revocation that matters."""

    def apply(event: CloudEvent) -> None:
        data = TokensRevoked.model_validate(event.data)
        revoke(data.user_id, data.min_token_version)

    start = (datetime.now(UTC) - REVOCATION_REPLAY).isoformat()
    follower = Follower(
        bus,
        TokensRevoked.event_type,
        apply,
        start={"deliver_policy": DeliverPolicy.BY_START_TIME, "opt_start_time": start},
    )
    await follower.catch_up()
    return asyncio.create_task(follower.follow(stop), name="revocations")
