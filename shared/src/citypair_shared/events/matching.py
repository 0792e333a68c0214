"""Events the `matching` service publishes: suggestions for a newly published city, decisions on suggested pairs,
and programme rounds."""

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from citypair_shared.events.envelope import EventData


class MatchAccepted(EventData):
    """Both cities accepted: a reproducible record of what the pair was scored on."""

    event_type: ClassVar[str] = "matching.match.accepted.v1"
    city_ids: list[str]
    score: float
    factors: dict[str, float]
    weights_version: str
    profile_versions: dict[str, int]
    themes: list[str] = []
    realism_version: str = ""
    decided_by: dict[str, str] = {}


class MatchDeclined(EventData):
    event_type: ClassVar[str] = "matching.match.declined.v1"
    city_ids: list[str]
    reason: str
    declined_by_city: str = ""
    text: str = ""
    score: float | None = None
    weights_version: str = ""
    # When the decision was recorded: every replica keeps the decline from the same instant.
    declined_at: datetime | None = None


class RoundCompleted(EventData):
    event_type: ClassVar[str] = "matching.round.completed.v1"
    round_id: str
    pairs: list[list[str]]
    total_score: float
    capacity: int = 1
    min_score: float = 0.0
    unmatched: dict[str, str] = {}
    weights_version: str = ""


class RoundPublished(EventData):
    """A coordinator published a round: its pairs are the programme's, and the officials of its cities hear of it."""

    event_type: ClassVar[str] = "matching.round.published.v1"
    round_id: str
    pairs: list[list[str]]
    city_ids: list[str] = Field(description="Every city of the round's pairs, once each")
    published_at: datetime
    published_by: str


class SuggestedPartner(BaseModel):
    """A partner suggested to a newly published city."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    city_id: str
    name: str
    score: float = Field(description="The pair's two-sided score, as `GET /cities/{id}/partners` ranks (to rounding)")


class SuggestionsFound(EventData):
    """A city was published (new, or from another status): its best partners among the published cities, named so
    that those told of them need no other service."""

    event_type: ClassVar[str] = "matching.suggestions.found.v1"
    city_id: str
    name: str
    suggestions: list[SuggestedPartner] = Field(description="Best first, at most 10")
