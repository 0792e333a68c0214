"""Events the `identity` service publishes."""

from typing import ClassVar

from pydantic import Field

from citypair_shared.events.envelope import EventData


class TokensRevoked(EventData):
    """Every access token of `user_id` with a version below `min_token_version` is void."""

    event_type: ClassVar[str] = "identity.user.tokens_revoked.v1"
    user_id: str
    min_token_version: int = Field(ge=1)
    reason: str
