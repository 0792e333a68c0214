"""Pilot-zone use cases: proposals checked against the city read model, moved through the workflow.

Each change bumps the proposal's version, appends to its timeline and, for a transition, stages the
transition's event in the same transaction.
"""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import Row, String, bindparam, cast, false, func, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_pilot_zones.models import Comment, KnownCity, KnownUser, Proposal, TimelineEntry, Transition
from citypair_pilot_zones.schemas import (
    CommentIn,
    FundingSource,
    ProposalBoard,
    ProposalCreate,
    ProposalMember,
    ProposalOut,
    ProposalTimelineEntry,
    ProposalUpdate,
    StaleSweepReport,
)
from citypair_pilot_zones.workflow import ALLOWED, OPEN, Status, allowed_from, can_move, moves_for
from citypair_shared.auth import Principal, forbidden
from citypair_shared.db import keep_newer, retry_on_conflict
from citypair_shared.events import CitySnapshot, MatchAccepted, UserSnapshot, new_event
from citypair_shared.events.pilot_zones import EVENT_FOR_STATUS, ProposalStaleFlagged
from citypair_shared.inbox import keep_newest
from citypair_shared.logging import get_logger
from citypair_shared.outbox import OutboxRelay
from citypair_shared.problems import Problem, invalid, not_found
from citypair_shared.themes import THEME_IDS
from citypair_shared.versions import check_if_match

log = get_logger(__name__)
SOURCE = "/citypair/pilot_zones"
# What may be edited in which state: the whole proposal while it is with the proposers; delivery tracking later.
CONTENT_STATES = frozenset({Status.draft, Status.changes_requested})
TRACKING_STATES = frozenset({Status.approved, Status.active})
TRACKING_FIELDS = frozenset({"milestones", "kpis", "documents"})
EDITABLE_FIELDS = frozenset(ProposalUpdate.model_fields)
CONFIRM_STATES = CONTENT_STATES
PUBLIC_STATES = (Status.approved.value, Status.active.value, Status.completed.value)
DECISIONS = frozenset(Status) - {Status.draft, Status.submitted, Status.withdrawn, Status.under_review}
# The stored fields that tell a budget: shown only to those who see it (`sees_budget`).
BUDGET_FIELDS = frozenset({"budget_amount", "budget_currency", "funding_sources"})
EXPORT_BATCH = 500  # proposals an export reads (and holds) at a time


def now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- pure rules


def member_key(city_ids: list[str]) -> str:
    return ",".join(sorted(city_ids))


def match_key(city_ids: list[str], weights_version: str) -> str:
    """One accepted match (the pair under one weights version) makes one draft, however often it arrives."""
    return f"{member_key(city_ids)}@{weights_version}"


def open_milestone_due(milestones: list[dict]) -> date | None:
    dues = [date.fromisoformat(m["due_date"]) for m in milestones if m.get("status") != "done"]
    return min(dues) if dues else None


def overdue_milestones(milestones: list[dict], today: date) -> list[str]:
    return [m["title"] for m in milestones if m.get("status") != "done" and date.fromisoformat(m["due_date"]) < today]


def stale_reasons(proposal: Proposal, *, at: datetime, stale_after: timedelta) -> list[str]:
    """Why an active proposal is stale (empty if it is not, or is not active)."""
    if proposal.status != Status.active.value:
        return []
    reasons = []
    if proposal.last_activity_at < at - stale_after:
        reasons.append("no_activity")
    if overdue_milestones(proposal.milestones, at.date()):
        reasons.append("overdue_milestone")
    return reasons


def user_moves(user: Principal, proposal: Proposal) -> frozenset[Status]:
    """The moves this user may make on this proposal, whatever its state.

    Once a coordinator is assigned, the decisions are theirs (another coordinator can take it over by assigning).
    """
    member_official = any(user.official_of(c) for c in proposal.city_ids)
    coordinator = user.has_role("coordinator")
    moves = moves_for(member_official=member_official, coordinator=coordinator)
    if coordinator and proposal.coordinator_id not in (None, user.user_id):
        moves -= DECISIONS | {Status.under_review}
    return moves


def editable_fields(user: Principal, proposal: Proposal) -> frozenset[str]:
    """The fields this user may change now, as `update` allows them (what the page offers to edit)."""
    state = Status(proposal.status)
    member = any(user.official_of(c) for c in proposal.city_ids)
    if state in CONTENT_STATES and member:
        return EDITABLE_FIELDS
    if state in TRACKING_STATES and (member or user.has_role("coordinator")):
        return TRACKING_FIELDS
    return frozenset()


def confirmable(user: Principal, proposal: Proposal) -> list[str]:
    """The member cities this user may confirm now (as `confirm_membership` allows)."""
    if Status(proposal.status) not in CONFIRM_STATES:
        return []
    return [c for c in proposal.city_ids if c not in proposal.confirmations and user.official_of(c)]


def sees_private(user: Principal) -> bool:
    return user.has_role("coordinator")


def sees_budget(user: Principal, proposal: Proposal) -> bool:
    """A budget not marked public is for the member cities' officials, coordinators and admins."""
    if proposal.budget_public or user.has_role("admin", "coordinator"):
        return True
    return any(user.official_of(c) for c in proposal.city_ids)


# --------------------------------------------------------------------------- read model


async def apply_cities(*, session: AsyncSession, cities: list[CitySnapshot]) -> None:
    """Keep the newest snapshot of each city (older or repeated ones are ignored), with one query for them all."""
    fields = ("id", "version", "name", "country_code", "status")
    await keep_newest(session, KnownCity, [{name: getattr(city, name) for name in fields} for city in cities])


async def apply_user(*, session: AsyncSession, user: UserSnapshot) -> None:
    """Keep whether a user may be assigned to review, from the newest snapshot (older or repeated ones are ignored)."""
    coordinator = "coordinator" in user.roles and not user.disabled
    await keep_newer(session, KnownUser, id=user.id, version=user.version, coordinator=coordinator)


# Built once, the ids bound at each call: a statement built per call coerced each of its ids and made a new
# cache key (a list page's data layer: 3.9 → 3.6–3.85 ms of CPU, tests/bench/proposal_list.py).
_city = KnownCity.__table__.c
KNOWN_CITIES = select(_city.id, _city.name, _city.country_code, _city.status).where(
    _city.id.in_(bindparam("ids", expanding=True))
)
_step = Transition.__table__.c
TRANSITIONS_OF = select(*_step).where(_step.proposal_id.in_(bindparam("ids", expanding=True))).order_by(_step.seq)


async def known_cities(session: AsyncSession, city_ids: set[str]) -> dict[str, Row]:
    """Name, country and status of each of `city_ids` pilot_zones knows: plain rows, not objects (a list page
    names some forty cities)."""
    if not city_ids:
        return {}
    rows = await (await session.connection()).execute(KNOWN_CITIES, {"ids": sorted(city_ids)})
    return {row.id: row for row in rows}


# --------------------------------------------------------------------------- output


def to_out(proposal: Proposal, user: Principal, cities: dict[str, Row], *, stale_after: timedelta) -> ProposalOut:
    """The proposal, with the transitions *this user* may make now (what the page offers)."""
    at = now()
    allowed = set(allowed_from(Status(proposal.status))) & user_moves(user, proposal)
    lead = proposal.lead_city_id or proposal.city_ids[0]
    members = []
    for city_id in proposal.city_ids:
        confirmation = proposal.confirmations.get(city_id)
        members.append(
            ProposalMember(
                city_id=city_id,
                name=cities[city_id].name if city_id in cities else None,
                lead=city_id == lead,
                confirmed=confirmation is not None,
                confirmed_by=confirmation and confirmation["by"],
                confirmed_at=confirmation and confirmation["at"],
            )
        )
    budget, funding_sources = None, proposal.funding_sources
    if not sees_budget(user, proposal):
        funding_sources = [FundingSource(name=f["name"]) for f in funding_sources]
    elif proposal.budget_amount is not None:
        budget = {"amount": proposal.budget_amount, "currency": proposal.budget_currency}
    reasons = stale_reasons(proposal, at=at, stale_after=stale_after)
    return ProposalOut(
        id=proposal.id,
        title=proposal.title,
        status=proposal.status,
        city_ids=proposal.city_ids,
        lead_city_id=lead,
        members=members,
        themes=proposal.themes,
        objectives=proposal.objectives,
        activities=proposal.activities,
        budget=budget,
        budget_public=proposal.budget_public,
        funding_sources=funding_sources,
        start_date=proposal.start_date,
        end_date=proposal.end_date,
        milestones=proposal.milestones,
        overdue_milestones=overdue_milestones(proposal.milestones, at.date()),
        kpis=proposal.kpis,
        documents=proposal.documents,
        score_record=proposal.score_record,
        coordinator_id=proposal.coordinator_id,
        stale=bool(reasons),
        stale_reasons=reasons,
        last_activity_at=proposal.last_activity_at,
        version=proposal.version,
        created_at=proposal.created_at,
        updated_at=proposal.updated_at,
        transitions=proposal.transitions,
        allowed_transitions=sorted(allowed),
        editable=sorted(editable_fields(user, proposal)),
        confirmable=confirmable(user, proposal),
    )


async def to_out_many(
    session: AsyncSession, proposals: list[Proposal], user: Principal, *, stale_after: timedelta
) -> list[ProposalOut]:
    cities = await known_cities(session, {c for p in proposals for c in p.city_ids})
    return [to_out(p, user, cities, stale_after=stale_after) for p in proposals]


# --------------------------------------------------------------------------- writing


def _record(
    session: AsyncSession,
    proposal: Proposal,
    action: str,
    actor: str | None,
    details: dict,
    *,
    private: bool = False,
    at: datetime | None = None,
    activity: bool = True,
) -> None:
    """Append to the proposal's timeline; a change by someone is activity (it resets the stale clock)."""
    at = at or now()
    if activity:
        # Set here, not by the column's onupdate: a server-side value would be expired (and lazily loaded) after commit.
        proposal.last_activity_at = proposal.updated_at = at
    session.add(
        TimelineEntry(
            proposal_id=proposal.id,
            version=proposal.version,
            action=action,
            actor_id=actor,
            details=details,
            private=private,
            at=at,
        )
    )


def _json(value):
    """Validated input (pydantic models, dates) as stored JSON."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value.value if hasattr(value, "value") else value


async def _check_cities(session: AsyncSession, city_ids: list[str]) -> None:
    cities = await known_cities(session, set(city_ids))
    for position, city_id in enumerate(city_ids):
        city = cities.get(city_id)
        if city is None:
            raise invalid(f"city_ids[{position}]", f"unknown city {city_id!r}", code="unknown_city", city_id=city_id)
        if city.status == "retired":
            raise invalid(f"city_ids[{position}]", f"city {city_id!r} is retired", code="retired_city", city_id=city_id)


async def _open_duplicate(session: AsyncSession, key: str, *, other_than: str | None = None) -> str | None:
    query = select(Proposal.id).where(Proposal.member_key == key, Proposal.status.in_([s.value for s in OPEN]))
    if other_than:
        query = query.where(Proposal.id != other_than)
    return await session.scalar(query.limit(1))


def _duplicate(existing_id: str) -> Problem:
    return Problem(
        409,
        "Duplicate proposal",
        "an open proposal for these cities exists",
        type_="/problems/duplicate",
        existing_id=existing_id,
    )


async def _commit_unless_duplicate(session: AsyncSession, key: str, *, other_than: str | None = None) -> None:
    """Commit; if an open proposal for the same cities was committed meanwhile (the unique index), 409."""
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        duplicate = await _open_duplicate(session, key, other_than=other_than)
        if duplicate:
            raise _duplicate(duplicate) from None
        raise


# Fields stored as JSON lists: null in a request means an empty list.
LIST_FIELDS = ("objectives", "activities", "funding_sources", "milestones", "kpis", "documents", "themes")


def _content(data: ProposalCreate | ProposalUpdate, *, partial: bool) -> dict:
    """The stored column values for the fields given."""
    given = data.model_fields_set if partial else set(type(data).model_fields)
    values = {}
    for name in given:
        value = getattr(data, name)
        if name == "budget":
            values["budget_amount"] = value.amount if value else None
            values["budget_currency"] = value.currency if value else None
        elif name == "budget_public":
            values["budget_public"] = bool(value)
        elif value is None and name in LIST_FIELDS:
            values[name] = []
        elif value is not None or name in ("start_date", "end_date", "lead_city_id"):
            values[name] = value if name in ("start_date", "end_date") else _json(value)
    if "milestones" in values:
        values["open_milestone_due"] = open_milestone_due(values["milestones"])
    return values


# The stored columns of a field, where they are not the field itself.
FIELD_OF_COLUMN = {"budget_amount": "budget", "budget_currency": "budget", "open_milestone_due": "milestones"}


def only_changes(proposal: Proposal, data: ProposalUpdate) -> ProposalUpdate:
    """`data` with only the fields that would change the proposal: a row an import repeats as it is changes nothing
    (and is no edit, which the proposal's state may not allow)."""
    changed = {FIELD_OF_COLUMN.get(k, k) for k, v in _content(data, partial=True).items() if getattr(proposal, k) != v}
    return ProposalUpdate.model_construct(_fields_set=changed, **{name: getattr(data, name) for name in changed})


def _check_lead(city_ids: list[str], lead: str | None) -> str:
    if lead is None:
        return city_ids[0]
    if lead not in city_ids:
        raise invalid("lead_city_id", "the lead city must be one of city_ids", code="lead_not_member")
    return lead


async def create(*, session: AsyncSession, user: Principal, data: ProposalCreate) -> Proposal:
    """Draft a proposal; the drafter's own member cities count as confirmed (drafting is their confirmation)."""
    proposal = await draft(session=session, user=user, data=data)
    await _commit_unless_duplicate(session, proposal.member_key)
    return proposal


async def draft(*, session: AsyncSession, user: Principal, data: ProposalCreate) -> Proposal:
    """`create`'s checks and writes, not committed (an import drafts its rows so): a Problem before any write."""
    if not any(user.official_of(c) for c in data.city_ids):
        message = "only an official of one of the member cities may draft a proposal"
        raise forbidden(message, errors=[{"field": "city_ids", "message": "none of these cities is one of yours"}])
    lead = _check_lead(data.city_ids, data.lead_city_id)
    await _check_cities(session, data.city_ids)
    key = member_key(data.city_ids)
    duplicate = await _open_duplicate(session, key)
    if duplicate:
        raise _duplicate(duplicate)
    at = now()
    confirmations = {c: {"by": user.user_id, "at": at.isoformat()} for c in data.city_ids if user.official_of(c)}
    values = _content(data, partial=False)
    values.pop("lead_city_id", None)
    proposal = Proposal(
        id=str(uuid.uuid4()),
        status=Status.draft.value,
        member_key=key,
        lead_city_id=lead,
        confirmations=confirmations,
        version=1,
        transitions=[],
        created_at=at,
        updated_at=at,
        **values,
    )
    session.add(proposal)
    _record(session, proposal, "created", user.user_id, {"title": data.title, "city_ids": data.city_ids}, at=at)
    return proposal


async def create_from_match(*, session: AsyncSession, match: MatchAccepted, event_id: str) -> Proposal | None:
    """A draft for an accepted match, prefilled with its themes and score record (in the handler's transaction).

    Nothing is made if this match already made a draft (even under another event id) or if an open
    proposal for the same cities exists.
    """
    city_ids = list(dict.fromkeys(match.city_ids))
    if len(city_ids) < 2:
        log.warning("pilot_zones.match_ignored", event_id=event_id, reason="fewer than two cities")
        return None
    key = match_key(city_ids, match.weights_version)
    if await session.scalar(select(Proposal.id).where(Proposal.match_key == key)):
        return None
    existing = await _open_duplicate(session, member_key(city_ids))
    if existing:
        log.info("pilot_zones.match_has_open_proposal", event_id=event_id, proposal_id=existing)
        return None
    cities = await known_cities(session, set(city_ids))
    names = [cities[c].name if c in cities else c for c in city_ids]
    themes = [t for t in dict.fromkeys(match.themes) if t in THEME_IDS]
    at = now()
    proposal = Proposal(
        id=str(uuid.uuid4()),
        title=f"{' – '.join(names)} pilot zone"[:200],
        status=Status.draft.value,
        city_ids=city_ids,
        lead_city_id=city_ids[0],
        member_key=member_key(city_ids),
        match_key=key,
        confirmations={},
        themes=themes,
        score_record={
            "score": match.score,
            "factors": dict(match.factors),
            "weights_version": match.weights_version,
            "profile_versions": dict(match.profile_versions),
            "themes": list(match.themes),
        },
        version=1,
        transitions=[],
        created_at=at,
        updated_at=at,
    )
    session.add(proposal)
    _record(session, proposal, "created_from_match", None, {"event_id": event_id, "score": match.score}, at=at)
    return proposal


async def get(*, session: AsyncSession, proposal_id: str) -> Proposal:
    proposal = await session.get(Proposal, proposal_id)
    if proposal is None:
        raise not_found("pilot zone", proposal_id)
    return proposal


@retry_on_conflict
async def update(
    *, session: AsyncSession, user: Principal, proposal_id: str, data: ProposalUpdate, if_match: str | None
) -> Proposal:
    """Edit: member officials edit the whole proposal while it is a draft or sent back; in delivery
    (approved, active) member officials and coordinators update milestones, KPIs and documents."""
    proposal = await get(session=session, proposal_id=proposal_id)
    if await edit(session=session, user=user, proposal=proposal, data=data, if_match=if_match):
        await _commit_unless_duplicate(session, proposal.member_key, other_than=proposal.id)
    return proposal


async def edit(
    *, session: AsyncSession, user: Principal, proposal: Proposal, data: ProposalUpdate, if_match: str | None
) -> bool:
    """`update`'s checks and writes, not committed (an import edits its rows so): whether anything changed; a
    Problem before any write."""
    state = Status(proposal.status)
    member = any(user.official_of(c) for c in proposal.city_ids)
    fields = set(data.model_fields_set)
    if state in CONTENT_STATES:
        if not member:
            raise forbidden("only officials of the member cities edit a proposal before it is decided")
    elif state in TRACKING_STATES:
        if not (member or user.has_role("coordinator")):
            raise forbidden("only officials of the member cities and coordinators track delivery")
        if fields - TRACKING_FIELDS:
            raise Problem(
                409,
                "Not editable now",
                f"a {state} proposal's {', '.join(sorted(fields - TRACKING_FIELDS))} cannot change",
                type_="/problems/not-editable",
                editable=sorted(TRACKING_FIELDS),
            )
    else:
        if not (member or user.has_role("coordinator")):
            raise forbidden("only officials of the member cities edit a proposal")
        raise Problem(
            409,
            "Not editable now",
            f"a {state} proposal cannot be edited",
            type_="/problems/not-editable",
            editable=[],
        )
    check_if_match(version=proposal.version, if_match=if_match, what="proposal")
    values = _content(data, partial=True)
    city_ids = values.get("city_ids", proposal.city_ids)
    if "city_ids" in values or "lead_city_id" in values:
        kept = proposal.lead_city_id if proposal.lead_city_id in city_ids else None
        values["lead_city_id"] = _check_lead(city_ids, values.get("lead_city_id") or kept)
    if "city_ids" in values:
        # Else an official could park a draft on other cities' member set and block those cities' own proposal.
        if not any(user.official_of(c) for c in city_ids):
            raise forbidden(
                "the member cities must still include one you are an official of",
                errors=[{"field": "city_ids", "message": "none of these cities is one of yours"}],
            )
        await _check_cities(session, city_ids)
        key = member_key(city_ids)
        duplicate = await _open_duplicate(session, key, other_than=proposal.id)
        if duplicate:
            raise _duplicate(duplicate)
        values["member_key"] = key
        # Confirmations hold only for cities that are still members.
        values["confirmations"] = {c: v for c, v in proposal.confirmations.items() if c in city_ids}
    start = values.get("start_date", proposal.start_date)
    end = values.get("end_date", proposal.end_date)
    if start and end and end < start:
        raise invalid("end_date", "the end date is before the start date", code="end_before_start")
    changes = {}
    for key, value in values.items():
        old = getattr(proposal, key)
        if old != value:
            changes[key] = [_json(old), _json(value)]
            setattr(proposal, key, value)
    for internal in ("member_key", "open_milestone_due", "confirmations"):
        changes.pop(internal, None)
    if changes:
        proposal.version += 1
        _record(session, proposal, "edited", user.user_id, {"changes": changes})
    return bool(changes)


@retry_on_conflict
async def confirm_membership(*, session: AsyncSession, user: Principal, proposal_id: str, city_id: str) -> Proposal:
    """An official of a member city confirms that city takes part (before the proposal is submitted)."""
    proposal = await get(session=session, proposal_id=proposal_id)
    if city_id not in proposal.city_ids:
        raise not_found(f"member city of pilot zone {proposal_id}:", city_id)
    if not user.official_of(city_id):
        raise forbidden("only an official of that city may confirm its membership")
    if Status(proposal.status) not in CONFIRM_STATES:
        raise Problem(
            409,
            "Confirmation not open",
            f"a {proposal.status} proposal takes no confirmations",
            type_="/problems/transition",
            allowed=allowed_from(Status(proposal.status)),
        )
    if city_id not in proposal.confirmations:
        at = now()
        proposal.confirmations = {**proposal.confirmations, city_id: {"by": user.user_id, "at": at.isoformat()}}
        proposal.version += 1
        _record(session, proposal, "confirmed", user.user_id, {"city_id": city_id}, at=at)
        await session.commit()
    return proposal


async def _check_coordinator(session: AsyncSession, user_id: str) -> None:
    """422 unless identity's events said `user_id` is an enabled coordinator."""
    known = await session.get(KnownUser, user_id)
    if known is None or not known.coordinator:
        raise invalid(
            "coordinator_id", f"no coordinator has the id {user_id!r}", code="unknown_coordinator", user_id=user_id
        )


@retry_on_conflict
async def assign(
    *, session: AsyncSession, user: Principal, proposal_id: str, coordinator_id: str | None, comment: str
) -> Proposal:
    """Assign a coordinator (oneself by default) to review and follow the proposal."""
    proposal = await get(session=session, proposal_id=proposal_id)
    if coordinator_id is None and not user.has_role("coordinator"):
        raise invalid(
            "coordinator_id",
            "name the coordinator to assign (only a coordinator assigns themselves)",
            code="coordinator_not_named",
        )
    target = coordinator_id or user.user_id
    if not (target == user.user_id and user.has_role("coordinator")):
        await _check_coordinator(session, target)
    if not ALLOWED[Status(proposal.status)]:
        raise Problem(
            409,
            "Assignment closed",
            f"a {proposal.status} proposal is closed",
            type_="/problems/transition",
            allowed=[],
        )
    if proposal.coordinator_id != target:
        details = {"from": proposal.coordinator_id, "to": target, "comment": comment}
        proposal.coordinator_id = target
        proposal.version += 1
        _record(session, proposal, "assigned", user.user_id, details)
        await session.commit()
    return proposal


@retry_on_conflict
async def transition(
    *,
    session: AsyncSession,
    relay: OutboxRelay,
    user: Principal,
    proposal_id: str,
    to: Status,
    comment: str,
    if_match: str | None = None,
) -> Proposal:
    """Move a proposal one step, record who and why, and stage the step's event in the same transaction."""
    proposal = await get(session=session, proposal_id=proposal_id)
    current = Status(proposal.status)
    mine = user_moves(user, proposal)
    if to not in mine:
        extra = {}
        if proposal.coordinator_id and user.has_role("coordinator"):
            extra["coordinator_id"] = proposal.coordinator_id
        raise forbidden(
            f"you may not move this proposal to {to}" + (" (another coordinator is assigned)" if extra else ""),
            allowed=sorted(set(allowed_from(current)) & mine),
            **extra,
        )
    if not can_move(current, to):
        raise Problem(
            409,
            "Transition not allowed",
            f"a {current} proposal cannot move to {to}",
            type_="/problems/transition",
            allowed=allowed_from(current),
        )
    check_if_match(version=proposal.version, if_match=if_match, what="proposal")
    if to == Status.submitted:
        unconfirmed = [c for c in proposal.city_ids if c not in proposal.confirmations]
        if unconfirmed:
            raise Problem(
                409,
                "Membership not confirmed",
                "every member city must confirm its membership before submission",
                type_="/problems/unconfirmed",
                unconfirmed=unconfirmed,
                allowed=allowed_from(current),
            )
    at = now()
    proposal.status = to.value
    proposal.version += 1
    if to == Status.under_review and proposal.coordinator_id is None:
        proposal.coordinator_id = user.user_id
        _record(session, proposal, "assigned", user.user_id, {"from": None, "to": user.user_id}, at=at)
    proposal.transitions.append(
        Transition(from_status=current.value, to_status=to.value, actor_id=user.user_id, comment=comment, at=at)
    )
    _record(
        session,
        proposal,
        "transition",
        user.user_id,
        {"from": current.value, "to": to.value, "comment": comment},
        at=at,
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
    return proposal


# --------------------------------------------------------------------------- lists, board, export


@dataclass(frozen=True)
class ProposalFilter:
    status: str | None = None
    city_id: str | None = None
    theme: str | None = None
    coordinator_id: str | None = None
    overdue: bool | None = None
    only_cities: frozenset[str] | None = None  # an official's export: proposals with one of these cities


def filtered(f: ProposalFilter, today: date):
    query = select(Proposal)
    if f.status:
        query = query.where(Proposal.status == f.status)
    if f.city_id:
        # Member ids are UUIDs joined by commas, so containment is membership.
        query = query.where(Proposal.member_key.contains(f.city_id, autoescape=True))
    if f.theme:
        query = query.where(cast(Proposal.themes, String).contains(f'"{f.theme}"', autoescape=True))
    if f.coordinator_id:
        query = query.where(Proposal.coordinator_id == f.coordinator_id)
    if f.overdue is True:
        query = query.where(Proposal.open_milestone_due < today)
    elif f.overdue is False:
        query = query.where((Proposal.open_milestone_due.is_(None)) | (Proposal.open_milestone_due >= today))
    if f.only_cities is not None:
        clauses = [Proposal.member_key.contains(c, autoescape=True) for c in sorted(f.only_cities)]
        query = query.where(or_(*clauses) if clauses else false())
    return query


async def list_proposals(*, session: AsyncSession, limit: int, offset: int, filters: ProposalFilter):
    """A page, newest first, and how many proposals the filters choose. The total comes with each row (a window
    count), not from a count of its own; only a page past the end asks for the count alone.

    Plain rows, read only: building ORM objects and selectin-loading their transitions took about a third of
    pilot_zones' samples on a list page (py-spy, under load). Each proposal is a namespace with the attributes
    of a `Proposal` and its transitions, for `to_out`."""
    query = filtered(filters, now().date())
    total = func.count().over().label("total")
    page = query.with_only_columns(*Proposal.__table__.c, total).order_by(Proposal.created_at.desc(), Proposal.id)
    connection = await session.connection()  # Core rows: no ORM compile state, no identity map
    rows = (await connection.execute(page.limit(limit).offset(offset))).all()
    if not rows:
        return [], await session.scalar(select(func.count()).select_from(query.subquery())) if offset else 0
    transitions = {row.id: [] for row in rows}
    for step in await connection.execute(TRANSITIONS_OF, {"ids": list(transitions)}):
        transitions[step.proposal_id].append(step)
    listed = [SimpleNamespace(**row._mapping, transitions=transitions[row.id]) for row in rows]
    return listed, rows[0].total


async def export(*, session: AsyncSession, filters: ProposalFilter) -> AsyncIterator[list[Proposal]]:
    """The filtered proposals, oldest first, EXPORT_BATCH at a time through one server-side cursor (`yield_per`)."""
    query = filtered(filters, now().date()).order_by(Proposal.created_at, Proposal.id)
    result = await session.stream_scalars(query.execution_options(yield_per=EXPORT_BATCH))
    async for proposals in result.partitions():
        yield list(proposals)


async def board(*, session: AsyncSession, stale_after: timedelta) -> ProposalBoard:
    at = now()
    counts = {s.value: 0 for s in Status}
    for status, count in await session.execute(select(Proposal.status, func.count()).group_by(Proposal.status)):
        counts[status] = count
    overdue = await session.scalar(select(func.count()).where(Proposal.open_milestone_due < at.date()))
    active = await session.scalars(select(Proposal).where(Proposal.status == Status.active.value))
    stale = sum(1 for p in active if stale_reasons(p, at=at, stale_after=stale_after))
    return ProposalBoard(counts=counts, total=sum(counts.values()), stale=stale, overdue=overdue or 0)


async def timeline(*, session: AsyncSession, user: Principal, proposal_id: str, limit: int, offset: int):
    proposal = await get(session=session, proposal_id=proposal_id)
    query = select(TimelineEntry).where(TimelineEntry.proposal_id == proposal_id)
    if not sees_private(user):
        query = query.where(TimelineEntry.private.is_(False))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(TimelineEntry.seq).limit(limit).offset(offset))
    if sees_budget(user, proposal):
        return list(rows), total
    return [_without_budget(entry) for entry in rows], total


def _without_budget(entry: TimelineEntry) -> ProposalTimelineEntry:
    """The entry with budget edits shown only as "changed"."""
    out = ProposalTimelineEntry.model_validate(entry)
    changes = out.details.get("changes")
    if isinstance(changes, dict) and BUDGET_FIELDS & set(changes):
        hidden = {k: "changed" if k in BUDGET_FIELDS else v for k, v in changes.items()}
        out.details = {**out.details, "changes": hidden}
    return out


# --------------------------------------------------------------------------- comments


@retry_on_conflict
async def add_comment(*, session: AsyncSession, user: Principal, proposal_id: str, data: CommentIn) -> Comment:
    """Member officials and coordinators comment; only coordinators write private reviewer notes.

    A reply to a private note is private too (an official must never see half a conversation).
    """
    proposal = await get(session=session, proposal_id=proposal_id)
    member = any(user.official_of(c) for c in proposal.city_ids)
    coordinator = user.has_role("coordinator")
    if not (member or coordinator):
        raise forbidden("only officials of the member cities and coordinators comment")
    if data.private and not coordinator:
        raise forbidden("only coordinators write private reviewer notes")
    private = data.private
    if data.parent_id is not None:
        parent = await session.get(Comment, data.parent_id)
        if parent is None or parent.proposal_id != proposal_id or (parent.private and not coordinator):
            raise invalid(
                "parent_id",
                f"no comment {data.parent_id!r} on this proposal",
                code="unknown_comment",
                comment_id=data.parent_id,
            )
        private = private or parent.private
    comment = Comment(
        id=str(uuid.uuid4()),
        proposal_id=proposal_id,
        parent_id=data.parent_id,
        author_id=user.user_id,
        body=data.body,
        private=private,
        created_at=now(),
    )
    session.add(comment)
    _record(
        session,
        proposal,
        "commented",
        user.user_id,
        {"comment_id": comment.id, "parent_id": data.parent_id},
        private=private,
    )
    await session.commit()
    return comment


async def comments(*, session: AsyncSession, user: Principal, proposal_id: str, limit: int, offset: int):
    await get(session=session, proposal_id=proposal_id)
    query = select(Comment).where(Comment.proposal_id == proposal_id)
    if not sees_private(user):
        query = query.where(Comment.private.is_(False))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(Comment.created_at, Comment.id).limit(limit).offset(offset))
    return list(rows), total


# --------------------------------------------------------------------------- stale work


async def sweep_stale(*, session: AsyncSession, relay: OutboxRelay, stale_after: timedelta) -> StaleSweepReport:
    """Flag active proposals that went stale (one event per episode) and clear those that recovered."""
    at = now()
    flagged, cleared = [], []
    candidates = list(
        await session.scalars(
            select(Proposal).where((Proposal.status == Status.active.value) | Proposal.stale_flagged_at.is_not(None))
        )
    )
    for proposal in candidates:
        reasons = stale_reasons(proposal, at=at, stale_after=stale_after)
        if reasons and proposal.stale_flagged_at is None:
            # Guarded so that two sweeps racing flag (and announce) an episode once.
            won = await session.execute(
                sql_update(Proposal)
                .where(Proposal.id == proposal.id, Proposal.stale_flagged_at.is_(None))
                .values(stale_flagged_at=at)
                .execution_options(synchronize_session=False)
            )
            if won.rowcount != 1:
                continue
            data = ProposalStaleFlagged(
                proposal_id=proposal.id,
                title=proposal.title,
                city_ids=proposal.city_ids,
                coordinator_id=proposal.coordinator_id,
                reasons=reasons,
                last_activity_at=proposal.last_activity_at,
                overdue_milestones=overdue_milestones(proposal.milestones, at.date()),
            )
            relay.add(session, new_event(data, source=SOURCE, subject=proposal.id))
            # Not activity: being flagged must not reset the clock that flagged it.
            _record(session, proposal, "stale_flagged", None, {"reasons": reasons}, at=at, activity=False)
            flagged.append(proposal.id)
        elif not reasons and proposal.stale_flagged_at is not None:
            await session.execute(
                sql_update(Proposal)
                .where(Proposal.id == proposal.id)
                .values(stale_flagged_at=None)
                .execution_options(synchronize_session=False)
            )
            cleared.append(proposal.id)
    await session.commit()
    return StaleSweepReport(checked=len(candidates), flagged=flagged, cleared=cleared)


# --------------------------------------------------------------------------- open data


async def open_data(*, session: AsyncSession, limit: int, offset: int) -> tuple[list[dict], int]:
    """Approved, active and completed pilot zones as open data: cities, themes, dates, status; a budget
    only where the proposers marked it public; nothing else."""
    query = select(Proposal).where(Proposal.status.in_(PUBLIC_STATES))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = list(await session.scalars(query.order_by(Proposal.created_at, Proposal.id).limit(limit).offset(offset)))
    return await _open_items(session, rows), total


async def open_export(*, session: AsyncSession) -> AsyncIterator[list[dict]]:
    """Every pilot zone open data shows (as `open_data`), EXPORT_BATCH at a time through one server-side cursor."""
    query = select(Proposal).where(Proposal.status.in_(PUBLIC_STATES)).order_by(Proposal.created_at, Proposal.id)
    result = await session.stream_scalars(query.execution_options(yield_per=EXPORT_BATCH))
    async for proposals in result.partitions():
        yield await _open_items(session, list(proposals))


async def _open_items(session: AsyncSession, rows: list[Proposal]) -> list[dict]:
    cities = await known_cities(session, {c for p in rows for c in p.city_ids})
    items = []
    for p in rows:
        public_budget = p.budget_public and p.budget_amount is not None
        items.append(
            {
                "id": p.id,
                "title": p.title,
                "status": p.status,
                "lead_city_id": p.lead_city_id or p.city_ids[0],
                "cities": [
                    {
                        "id": c,
                        "name": cities[c].name if c in cities else None,
                        "country_code": cities[c].country_code if c in cities else None,
                    }
                    for c in p.city_ids
                ],
                "themes": p.themes,
                "start_date": p.start_date,
                "end_date": p.end_date,
                "budget": {"amount": p.budget_amount, "currency": p.budget_currency} if public_budget else None,
            }
        )
    return items
