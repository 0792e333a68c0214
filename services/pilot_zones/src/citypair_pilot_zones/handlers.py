"""Events `pilot_zones` consumes, and what each does."""

from citypair_pilot_zones import service
from citypair_shared.events import (
    CityRegistered,
    CityRetired,
    CityUpdated,
    CloudEvent,
    MatchAccepted,
    UserRegistered,
    UserRolesChanged,
)
from citypair_shared.inbox import BatchHandler


async def on_city_snapshots(events: list[CloudEvent], session) -> None:
    await service.apply_cities(session=session, cities=[event.parsed().city for event in events])


async def on_user_snapshot(event: CloudEvent, session) -> None:
    """Who may be assigned to review: coordinators, as identity announces them."""
    await service.apply_user(session=session, user=event.parsed().user)


async def on_match_accepted(event: CloudEvent, session) -> None:
    """An accepted match becomes a draft proposal for the pair (once: the inbox and the match key see to it)."""
    await service.create_from_match(session=session, match=event.parsed(), event_id=event.id)


on_city_snapshot = BatchHandler(on_city_snapshots)

EVENT_HANDLERS = {
    CityRegistered.event_type: on_city_snapshot,
    CityUpdated.event_type: on_city_snapshot,
    CityRetired.event_type: on_city_snapshot,
    MatchAccepted.event_type: on_match_accepted,
    UserRegistered.event_type: on_user_snapshot,
    UserRolesChanged.event_type: on_user_snapshot,
}
