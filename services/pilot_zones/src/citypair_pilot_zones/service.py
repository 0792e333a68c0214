"""Pilot-zone use cases: proposals checked against the city read model, moved through the workflow."""

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_pilot_zones.models import KnownCity, Proposal, Transition
from citypair_pilot_zones.schemas import ProposalCreate
from citypair_pilot_zones.workflow import OPEN, Status, allowed_from, can_move, moves_for
from citypair_shared.auth import Principal, forbidden
from citypair_shared.events import CitySnapshot, new_event
from citypair_shared.events.pilot_zones import EVENT_FOR_STATUS
from citypair_shared.outbox import OutboxRelay
from citypair_shared.problems import Problem, invalid, not_found

SOURCE = "/citypair/pilot_zones"


async def apply_city(*, session: AsyncSession, city: CitySnapshot) -> None:
    """Keep the newest snapshot of a city (older or repeated ones are ignored)."""
    known = await session.get(KnownCity, city.id)
    if known is not None and known.version >= city.version:
        return
    values = {"version": city.version, "name": city.name, "country_code": city.country_code, "status": city.status}
    if known is None:
        session.add(KnownCity(id=city.id, **values))
    else:
        for key, value in values.items():
            setattr(known, key, value)


async def create(*, session: AsyncSession, user: Principal, data: ProposalCreate) -> Proposal:
    if not any(user.official_of(c) for c in data.city_ids):
        raise forbidden("only an official of one of the member cities may draft a proposal")
    for position, city_id in enumerate(data.city_ids):
        city = await session.get(KnownCity, city_id)
        if city is None:
            raise invalid(f"city_ids[{position}]", f"unknown city {city_id!r}")
        if city.status == "retired":
            raise invalid(f"city_ids[{position}]", f"city {city_id!r} is retired")
    member_key = ",".join(sorted(data.city_ids))
    duplicate = await session.scalar(
        select(Proposal.id).where(Proposal.member_key == member_key, Proposal.status.in_([s.value for s in OPEN]))
    )
    if duplicate:
        raise Problem(
            409,
            "Duplicate proposal",
            "an open proposal for these cities exists",
            type_="/problems/duplicate",
            existing_id=duplicate,
        )
    proposal = Proposal(
        id=str(uuid.uuid4()),
        title=data.title,
        status=Status.draft.value,
        city_ids=data.city_ids,
        member_key=member_key,
        themes=[t.value for t in data.themes],
        transitions=[],
    )
    session.add(proposal)
    await session.commit()
    return proposal


async def get(*, session: AsyncSession, proposal_id: str) -> Proposal:
    proposal = await session.get(Proposal, proposal_id)
    if proposal is None:
        raise not_found("pilot zone", proposal_id)
    return proposal


async def list_proposals(*, session: AsyncSession, limit: int, offset: int, status: Status | None):
    query = select(Proposal)
    if status:
        query = query.where(Proposal.status == status.value)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(Proposal.created_at.desc(), Proposal.id).limit(limit).offset(offset))
    return list(rows), total


def user_moves(user: Principal, proposal: Proposal) -> frozenset[Status]:
    """The moves this user may make on this proposal, whatever its state."""
    member_official = any(user.official_of(c) for c in proposal.city_ids)
    return moves_for(member_official=member_official, coordinator=user.has_role("coordinator"))


async def transition(
    *, session: AsyncSession, relay: OutboxRelay, user: Principal, proposal_id: str, to: Status, comment: str
) -> Proposal:
    """Move a proposal one step, record who and why, and stage the step's event in the same transaction."""
    proposal = await get(session=session, proposal_id=proposal_id)
    current = Status(proposal.status)
    mine = user_moves(user, proposal)
    if to not in mine:
        raise forbidden(
            f"you may not move a proposal to {to}",
            allowed=sorted(set(allowed_from(current)) & mine),
        )
    if not can_move(current, to):
        raise Problem(
            409,
            "Transition not allowed",
            f"a {current} proposal cannot move to {to}",
            type_="/problems/transition",
            allowed=allowed_from(current),
        )
    proposal.status = to.value
    proposal.version += 1
    proposal.transitions.append(
        Transition(from_status=current.value, to_status=to.value, actor_id=user.user_id, comment=comment)
    )
    event_type = EVENT_FOR_STATUS.get(to.value)
    if event_type is not None:
        data = event_type(
            proposal_id=proposal.id,
            title=proposal.title,
            city_ids=proposal.city_ids,
            themes=proposal.themes,
            from_status=current.value,
            to_status=to.value,
            comment=comment,
        )
        relay.add(session, new_event(data, source=SOURCE, subject=proposal.id))
    await session.commit()
    await session.refresh(proposal)
    return proposal
