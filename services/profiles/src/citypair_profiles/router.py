from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from citypair_profiles import service
from citypair_profiles.schemas import CityCreate, CityOut, CityUpdate
from citypair_shared.auth import CurrentUser, Principal, require_roles
from citypair_shared.deps import Page, PageDep, RuntimeDep, SessionDep

router = APIRouter(prefix="/api/v1/cities", tags=["cities"])
PROBLEMS = {
    401: {"description": "Not signed in"},
    403: {"description": "Not allowed"},
    404: {"description": "No such city"},
    422: {"description": "Invalid input"},
}
Registrar = Annotated[Principal, require_roles("admin", "coordinator")]


def _etag(city) -> str:
    return f'"{city.version}"'


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CityOut, responses=PROBLEMS)
async def register_city(body: CityCreate, response: Response, session: SessionDep, runtime: RuntimeDep, _: Registrar):
    """Register a city; `profiles.city.registered.v1` is published after commit."""
    city = await service.register(session=session, relay=runtime.relay, data=body)
    response.headers["Location"] = f"/api/v1/cities/{city.id}"
    response.headers["ETag"] = _etag(city)
    return city


@router.get("", response_model=Page[CityOut], responses=PROBLEMS)
async def list_cities(
    session: SessionDep,
    page: PageDep,
    _: CurrentUser,
    country: Annotated[str | None, Query(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")] = None,
):
    """The directory, sorted by name."""
    items, total = await service.list_cities(session=session, limit=page.limit, offset=page.offset, country=country)
    return Page[CityOut](items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{city_id}", response_model=CityOut, responses=PROBLEMS)
async def get_city(city_id: str, response: Response, session: SessionDep, _: CurrentUser):
    city = await service.get(session=session, city_id=city_id)
    response.headers["ETag"] = _etag(city)
    return city


@router.patch("/{city_id}", response_model=CityOut, responses={**PROBLEMS, 412: {"description": "Stale If-Match"}})
async def update_city(
    city_id: str,
    body: CityUpdate,
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
    if_match: Annotated[str | None, Header(max_length=100, description="The ETag you read")] = None,
):
    """Change some fields; send the `ETag` you read as `If-Match` to refuse overwriting someone else's change."""
    city = await service.update(
        session=session, relay=runtime.relay, user=user, city_id=city_id, data=body, if_match=if_match
    )
    response.headers["ETag"] = _etag(city)
    return city
