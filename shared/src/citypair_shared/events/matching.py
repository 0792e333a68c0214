"""Events the `matching` service publishes (decisions and rounds; deepened by the matching issue)."""

from typing import ClassVar

from citypair_shared.events.envelope import EventData


class MatchAccepted(EventData):
    event_type: ClassVar[str] = "matching.match.accepted.v1"
    city_ids: list[str]
    score: float
    factors: dict[str, float]
    weights_version: str
    profile_versions: dict[str, int]
    themes: list[str] = []


class MatchDeclined(EventData):
    event_type: ClassVar[str] = "matching.match.declined.v1"
    city_ids: list[str]
    reason: str


class RoundCompleted(EventData):
    event_type: ClassVar[str] = "matching.round.completed.v1"
    round_id: str
    pairs: list[list[str]]
    total_score: float
