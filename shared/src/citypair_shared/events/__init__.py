"""Event schemas, owned by their producers: `identity`, `profiles`, `matching`, `pilot_zones`.

`EVENT_TYPES` maps each CloudEvents `type` (which is also the NATS subject) to its data model.
"""

from datetime import timedelta

from citypair_shared.events.envelope import CloudEvent, new_event
from citypair_shared.events.identity import TokensRevoked, UserRegistered, UserRolesChanged, UserSnapshot
from citypair_shared.events.matching import (
    MatchAccepted,
    MatchDeclined,
    RoundCompleted,
    RoundPublished,
    SuggestionsFound,
)
from citypair_shared.events.pilot_zones import PROPOSAL_EVENTS, ProposalApproved
from citypair_shared.events.profiles import CityRegistered, CityRetired, CitySnapshot, CityUpdated

EVENT_TYPES = {
    model.event_type: model
    for model in (
        TokensRevoked,
        UserRegistered,
        UserRolesChanged,
        CityRegistered,
        CityUpdated,
        CityRetired,
        MatchAccepted,
        MatchDeclined,
        RoundCompleted,
        RoundPublished,
        SuggestionsFound,
        *PROPOSAL_EVENTS,
    )
}

# One stream per producing service, declared by the bus admin before any service starts
# (citypair_shared.declare_streams): a service may not shape streams (citypair_shared.bus_access).
STREAMS = {"IDENTITY": "identity.>", "PROFILES": "profiles.>", "MATCHING": "matching.>", "PILOT_ZONES": "pilot_zones.>"}
DEAD_LETTER_STREAM = "DEADLETTER"
DEAD_LETTER_PREFIX = "deadletter"
# Key-value buckets (JetStream streams too, declared alike), and how long an untouched key is kept.
BUCKETS = {"web_sessions": timedelta(days=8)}  # web's sessions (their own lifetime is at most 7 days)


def stream_of(event_type: str) -> str:
    """The stream an event type is published on, by its producer prefix."""
    producer = event_type.split(".", 1)[0]
    return producer.upper()


__all__ = [
    "BUCKETS",
    "EVENT_TYPES",
    "STREAMS",
    "CloudEvent",
    "CitySnapshot",
    "CityRegistered",
    "CityUpdated",
    "CityRetired",
    "MatchAccepted",
    "MatchDeclined",
    "RoundCompleted",
    "RoundPublished",
    "SuggestionsFound",
    "TokensRevoked",
    "UserRegistered",
    "UserRolesChanged",
    "UserSnapshot",
    "ProposalApproved",
    "new_event",
    "stream_of",
]
