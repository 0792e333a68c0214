"""Events `matching` consumes, and what each does."""

from citypair_matching import service
from citypair_matching.core import MatchIndex
from citypair_shared.events import CityRegistered, CityRetired, CityUpdated, CloudEvent, ProposalApproved


def event_handlers(index: MatchIndex) -> dict:
    async def on_city_snapshot(event: CloudEvent, session) -> None:
        await service.apply_snapshot(session=session, index=index, city=event.parsed().city)

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
        CityRegistered.event_type: on_city_snapshot,
        CityUpdated.event_type: on_city_snapshot,
        CityRetired.event_type: on_city_snapshot,
        ProposalApproved.event_type: on_proposal_approved,
    }
