from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from citypair_pilot_zones import service
from citypair_pilot_zones.schemas import ProposalCreate, ProposalOut, TransitionIn
from citypair_pilot_zones.workflow import Status, allowed_from
from citypair_shared.deps import Page, PageDep, RuntimeDep, SessionDep

router = APIRouter(prefix="/api/v1/pilot-zones", tags=["pilot zones"])
PROBLEMS = {
    404: {"description": "No such pilot zone"},
    409: {"description": "Conflict"},
    422: {"description": "Invalid"},
}


def _out(proposal) -> ProposalOut:
    return ProposalOut.model_validate(
        {
            **{c: getattr(proposal, c) for c in ProposalOut.model_fields if c != "allowed_transitions"},
            "allowed_transitions": allowed_from(Status(proposal.status)),
        }
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProposalOut, responses=PROBLEMS)
async def create_proposal(body: ProposalCreate, response: Response, session: SessionDep):
    """Draft a pilot-zone proposal for two or more known cities."""
    proposal = await service.create(session=session, data=body)
    response.headers["Location"] = f"/api/v1/pilot-zones/{proposal.id}"
    return _out(proposal)


@router.get("", response_model=Page[ProposalOut], responses=PROBLEMS)
async def list_proposals(session: SessionDep, page: PageDep, status: Annotated[Status | None, Query()] = None):
    items, total = await service.list_proposals(session=session, limit=page.limit, offset=page.offset, status=status)
    return Page[ProposalOut](items=[_out(p) for p in items], total=total, limit=page.limit, offset=page.offset)


@router.get("/{proposal_id}", response_model=ProposalOut, responses=PROBLEMS)
async def get_proposal(proposal_id: str, session: SessionDep):
    return _out(await service.get(session=session, proposal_id=proposal_id))


@router.post("/{proposal_id}/transitions", response_model=ProposalOut, responses=PROBLEMS)
async def transition(proposal_id: str, body: TransitionIn, session: SessionDep, runtime: RuntimeDep):
    """Move the proposal to `to`; 409 lists the states allowed from here."""
    proposal = await service.transition(
        session=session, relay=runtime.relay, proposal_id=proposal_id, to=body.to, comment=body.comment
    )
    return _out(proposal)
