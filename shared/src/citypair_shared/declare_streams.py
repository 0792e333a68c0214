"""Declare the JetStream streams as the bus admin: the step before any service starts.

`python -m citypair_shared.declare_streams` is compose's `streams` job; `citypair run` and the tests do
the same once nats-server is up. The services may not (see citypair_shared.bus_access), and need not:
a stream that exists is brought to the configuration in the code.
"""

import asyncio
import os
from collections.abc import Mapping
from datetime import timedelta

from citypair_shared.bus import DEAD_LETTER_MAX_AGE, STREAM_MAX_AGE, Bus
from citypair_shared.bus_access import ADMIN, password_variable
from citypair_shared.settings import EMBEDDED_NATS_URL

READY_WITHIN_SECONDS = 60


async def declare_streams(url: str, *, admin_password: str | None, replicas: int = 1, **limits) -> None:
    """Create or update every stream (as the admin; without a password, on a server that asks for none),
    each on `replicas` nodes (3 in a three-node cluster, so a node may fail)."""
    bus = Bus(url, user=ADMIN, password=admin_password)
    await bus.connect()
    deadline = asyncio.get_running_loop().time() + READY_WITHIN_SECONDS
    try:
        while True:
            try:
                await bus.declare_streams(replicas=replicas, **limits)
                return
            except Exception:  # a new cluster elects its JetStream leader first: until then, every request fails
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await bus.close()


def stream_limits(env: Mapping[str, str]) -> dict[str, timedelta]:
    """How long the streams keep events and dead letters, from the environment (the services read the first too:
    an inbox row outlives its event's redeliveries)."""
    return {
        "max_age": timedelta(days=float(env.get("CITYPAIR_STREAM_MAX_AGE_DAYS", STREAM_MAX_AGE.days))),
        "dead_letter_max_age": timedelta(
            days=float(env.get("CITYPAIR_DEADLETTER_MAX_AGE_DAYS", DEAD_LETTER_MAX_AGE.days))
        ),
    }


def main() -> None:
    url = os.environ.get("CITYPAIR_NATS_URL", EMBEDDED_NATS_URL)
    admin_password = os.environ.get(password_variable(ADMIN))
    if not admin_password:
        raise SystemExit(f"set {password_variable(ADMIN)}: the bus admin's password (README: Configuration)")
    replicas = int(os.environ.get("CITYPAIR_NATS_REPLICAS", "1"))
    asyncio.run(declare_streams(url, admin_password=admin_password, replicas=replicas, **stream_limits(os.environ)))
    print(f"streams declared at {url}", flush=True)


if __name__ == "__main__":
    main()
