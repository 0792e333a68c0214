"""The outside attack on the bus, against the running stack: NATS without credentials, a forged revocation.

Before, anyone who reached NATS could publish `identity.user.tokens_revoked.v1` with a huge version and
lock a user out of every service. Now every connection needs a user, and only identity may publish its
subjects. Each permission in detail: tests/integration/test_bus_permissions.py.
"""

import time
import uuid

import httpx
import nats
import pytest
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout

from citypair_shared.events import TokensRevoked, new_event
from tests.support import client_for, connect_nats, create_user, eventually, run_async

# A path each service answers for any signed-in user (a 404 is an answer): 401 means the token was refused.
SIGNED_IN_PATHS = {
    "identity": "/api/v1/me",
    "profiles": "/api/v1/cities",
    "matching": f"/api/v1/rounds/{uuid.uuid4()}",
    "pilot_zones": "/api/v1/pilot-zones",
}


async def quiet(_error: Exception) -> None:
    """The refusals expected here; nats-py would log each."""


def accepted_everywhere(stack, client: httpx.Client) -> bool:
    """Each service, asked directly, takes the token: it has not applied a revocation of it."""
    token = client.headers["Authorization"]
    return all(
        httpx.get(stack.config.service_url(name) + path, headers={"Authorization": token}).status_code != 401
        for name, path in SIGNED_IN_PATHS.items()
    )


def test_nats_refuses_a_connection_without_credentials(stack):
    async def connect_anonymously():
        await nats.connect(stack.config.nats_url, allow_reconnect=False, connect_timeout=2, error_cb=quiet)

    with pytest.raises(NatsError, match="Authorization Violation"):
        run_async(connect_anonymously())


def test_a_forged_revocation_locks_nobody_out(stack, admin):
    user = create_user(admin, ["observer"])
    with client_for(stack.config.gateway_url, user["email"]) as client:
        assert eventually(lambda: accepted_everywhere(stack, client), what="the token to work everywhere")
        forged = new_event(
            TokensRevoked(user_id=user["id"], min_token_version=2**62, reason="forged"), source="/attacker"
        )

        async def forge_as(service: str) -> None:
            """As a service an attacker took over: it has a NATS user, but not identity's."""
            nc = await connect_nats(stack, service, error_cb=quiet)
            try:
                with pytest.raises(NatsTimeout):
                    await nc.jetstream().publish(forged.type, forged.model_dump_json().encode(), timeout=1)
            finally:
                await nc.close()

        for service in ("profiles", "matching", "pilot_zones"):
            run_async(forge_as(service))
        time.sleep(0.5)  # an accepted revocation reaches every service in milliseconds
        assert accepted_everywhere(stack, client), "the forged revocation locked the user out"
