from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from citypair_pilot_zones import service
from citypair_pilot_zones.schemas import ProposalCreate, ProposalOut, TransitionIn
from citypair_pilot_zones.workflow import Status, allowed_from
from citypair_shared.auth import CurrentUser, Principal
from citypair_shared.deps import IdPath, Page, PageDep, RuntimeDep, SessionDep
from citypair_shared.problems import problem_responses

router = APIRouter(prefix="/api/v1/pilot-zones", tags=["pilot zones"])
NO_PROPOSAL = {404: "No such pilot zone"}


def _out(proposal, user: Principal) -> ProposalOut:
    """The proposal, with the transitions *this user* may make now (what the page offers)."""
    allowed = set(allowed_from(Status(proposal.status))) & service.user_moves(user, proposal)
    fields = {c: getattr(proposal, c) for c in ProposalOut.model_fields if c != "allowed_transitions"}
    return ProposalOut.model_validate({**fields, "allowed_transitions": sorted(allowed)})


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProposalOut,
    responses=problem_responses(401, 403, 422, described={409: "An open proposal for these cities exists"}),
)
async def create_proposal(body: ProposalCreate, response: Response, session: SessionDep, user: CurrentUser):
    """Draft a pilot-zone proposal for two or more known cities, one of them the caller's."""
    proposal = await service.create(session=session, user=user, data=body)
    response.headers["Location"] = f"/api/v1/pilot-zones/{proposal.id}"
    return _out(proposal, user)


@router.get("", response_model=Page[ProposalOut], responses=problem_responses(401, 422))
async def list_proposals(
    session: SessionDep, page: PageDep, user: CurrentUser, status: Annotated[Status | None, Query()] = None
):
    items, total = await service.list_proposals(session=session, limit=page.limit, offset=page.offset, status=status)
    return Page[ProposalOut](items=[_out(p, user) for p in items], total=total, limit=page.limit, offset=page.offset)


@router.get("/{proposal_id}", response_model=ProposalOut, responses=problem_responses(401, 422, described=NO_PROPOSAL))
async def get_proposal(proposal_id: IdPath, session: SessionDep, user: CurrentUser):
    return _out(await service.get(session=session, proposal_id=proposal_id), user)


@router.post(
    "/{proposal_id}/transitions",
    response_model=ProposalOut,
    responses=problem_responses(
        401, 403, 422, described={**NO_PROPOSAL, 409: "The proposal's state does not allow this move"}
    ),
)
async def transition(
    proposal_id: IdPath, body: TransitionIn, session: SessionDep, runtime: RuntimeDep, user: CurrentUser
):
    """Move the proposal to `to`: 403 if this user may not, 409 if the state does not allow it (both list what may)."""
    proposal = await service.transition(
        session=session, relay=runtime.relay, user=user, proposal_id=proposal_id, to=body.to, comment=body.comment
    )
    return _out(proposal, user)
