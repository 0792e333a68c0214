"""Events `matching` consumes, and what each does: once per service to its database (handlers), and in
every replica to its index (followers), so that replicas answer alike."""

from collections.abc import Callable

from citypair_matching import service
from citypair_matching.core import MatchIndex
from citypair_shared.events import (
    CityRegistered,
    CityRetired,
    CityUpdated,
    CloudEvent,
    MatchAccepted,
    MatchDeclined,
    ProposalApproved,
)
from citypair_shared.follow import BatchApply
from citypair_shared.inbox import BatchHandler
from citypair_shared.outbox import OutboxRelay

CITY_SNAPSHOTS = (CityRegistered.event_type, CityUpdated.event_type, CityRetired.event_type)


def event_handlers(index: MatchIndex, relay: Callable[[], OutboxRelay]) -> dict:
    """`relay` gives the runtime's outbox relay (there once it started) for the events the handlers stage."""

    async def on_city_snapshots(events: list[CloudEvent], session) -> None:
        cities = [e.parsed().city for e in events]
        await service.apply_snapshots(session=session, index=index, relay=relay(), cities=cities)

    async def on_proposal_approved(event: CloudEvent, session) -> None:
        approved = event.parsed()
        await service.record_partnerships(
            session=session,
            index=index,
            pairs=service.all_pairs(approved.city_ids),
            source="pilot_zone",
            reference=approved.proposal_id,
        )

    return {
        **dict.fromkeys(CITY_SNAPSHOTS, BatchHandler(on_city_snapshots)),
        ProposalApproved.event_type: on_proposal_approved,
    }


def event_followers(index: MatchIndex) -> dict:
    """What each replica applies to its own index, whichever replica wrote the database (all idempotent)."""

    def city_snapshots(events: list[CloudEvent]) -> None:
        service.remember_snapshots(index, [e.parsed().city for e in events])

    def partners(event: CloudEvent) -> None:
        for a, b in service.all_pairs(sorted(event.parsed().city_ids)):
            index.add_partnership(a, b)

    def declined(event: CloudEvent) -> None:
        data = event.parsed()
        index.add_decline(*sorted(data.city_ids), data.declined_at or event.time)

    return {
        **dict.fromkeys(CITY_SNAPSHOTS, BatchApply(city_snapshots)),
        ProposalApproved.event_type: partners,
        MatchAccepted.event_type: partners,
        MatchDeclined.event_type: declined,
    }
