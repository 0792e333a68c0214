"""Events `pilot_zones` consumes, and what each does."""

from citypair_pilot_zones import service
from citypair_shared.events import CityRegistered, CityRetired, CityUpdated, CloudEvent


async def on_city_snapshot(event: CloudEvent, session) -> None:
    await service.apply_city(session=session, city=event.parsed().city)


EVENT_HANDLERS = {
    CityRegistered.event_type: on_city_snapshot,
    CityUpdated.event_type: on_city_snapshot,
    CityRetired.event_type: on_city_snapshot,
}
