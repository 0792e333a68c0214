from typing import Annotated

from fastapi import APIRouter, Query, Request

from citypair_matching.core import WEIGHTS_VERSION
from citypair_matching.schemas import PartnerOut, PartnersOut
from citypair_shared.auth import CurrentUser
from citypair_shared.deps import IdPath
from citypair_shared.problems import not_found, problem_responses

router = APIRouter(prefix="/api/v1", tags=["matching"])


@router.get(
    "/cities/{city_id}/partners",
    response_model=PartnersOut,
    responses=problem_responses(401, 422, described={404: "No such city"}),
)
async def partners(city_id: IdPath, request: Request, _: CurrentUser, k: Annotated[int, Query(ge=1, le=100)] = 10):
    """Ranked partner suggestions; both cities must gain."""
    index = request.app.state.index
    if city_id not in index:
        raise not_found("city", city_id)
    items = [PartnerOut(**vars(s)) for s in index.suggest(city_id, k)]
    return PartnersOut(city_id=city_id, weights_version=WEIGHTS_VERSION, items=items)
