"""Events the `identity` service publishes."""

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from citypair_shared.events.envelope import EventData


class TokensRevoked(EventData):
    """Every access token of `user_id` with a version below `min_token_version` is void."""

    event_type: ClassVar[str] = "identity.user.tokens_revoked.v1"
    user_id: str
    min_token_version: int = Field(ge=1)
    reason: str


class UserSnapshot(BaseModel):
    """What other services may know of a user at `version` (the token version): roles and whether disabled.

    No email and no cities: a service that needs more asks for a new version of the event.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    version: int = Field(ge=1)
    roles: list[str]
    disabled: bool = False


class _UserEvent(EventData):
    user: UserSnapshot


class UserRegistered(_UserEvent):
    """A user was created (or, once, an existing one announced when identity first published these events)."""

    event_type: ClassVar[str] = "identity.user.registered.v1"


class UserRolesChanged(_UserEvent):
    """A user's roles changed, or they were disabled or enabled (which takes or gives back every role)."""

    event_type: ClassVar[str] = "identity.user.roles_changed.v1"
