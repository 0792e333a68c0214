import re
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import PlainTextResponse

from citypair_profiles import service, tabular
from citypair_profiles.partnering import read_twin_rows
from citypair_profiles.schemas import (
    ChangeOut,
    CityCreate,
    CityFields,
    CityOut,
    CityUpdate,
    Corridor,
    ImportReport,
    PartnershipReport,
    SortKey,
)
from citypair_profiles.service import DirectoryFilter
from citypair_shared.auth import CurrentUser, Principal, require_roles
from citypair_shared.deps import IdPath, Page, PageDep, RuntimeDep, SessionDep
from citypair_shared.problems import Problem, invalid, problem_responses
from citypair_shared.themes import THEME_IDS

router = APIRouter(prefix="/api/v1/cities", tags=["cities"])
NO_CITY = {404: "No such city"}
Registrar = Annotated[Principal, require_roles("admin", "coordinator")]
IfMatch = Annotated[str | None, Header(max_length=100, description="The ETag you read; 412 if it is stale")]
THEME_LEVEL = r"^[a-z_]+:[0-5]$"
IMPORT_MAX_BYTES = 20 * 1024 * 1024
MAX_POPULATION = 100_000_000  # as CityCreate (and within the database's integer range)


def _etag(response: Response, city) -> None:
    response.headers["ETag"] = f'"{city.version}"'


async def _out(session, city, user: Principal) -> CityOut:
    partners = await service.partners_of(session, [city.id])
    return service.to_out(city, partners[city.id], user)


def _theme_levels(values: list[str], param: str) -> tuple[tuple[str, int], ...]:
    parsed = []
    for value in values:
        theme, level = value.split(":")
        if theme not in THEME_IDS:
            raise invalid(f"query.{param}", f"unknown theme {theme!r}")
        parsed.append((theme, int(level)))
    return tuple(parsed)


def directory_filter(
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Name or alternate name, any script")
    ] = None,
    country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2")] = None,
    corridor: Corridor | None = None,
    offers: Annotated[
        list[str], Query(max_length=5, description="`theme:level`: offers the theme at that level or more")
    ] = [],  # noqa: B006 - FastAPI copies defaults
    needs: Annotated[list[str], Query(max_length=5, description="`theme:level`: needs it at that level or more")] = [],  # noqa: B006
    population_min: Annotated[int | None, Query(ge=0, le=MAX_POPULATION)] = None,
    population_max: Annotated[int | None, Query(ge=0, le=MAX_POPULATION)] = None,
    status: Literal["draft", "published", "retired"] | None = None,
    verified: bool | None = None,
    stale: bool | None = None,
) -> DirectoryFilter:
    for name, values in (("offers", offers), ("needs", needs)):
        for value in values:
            if not re.match(THEME_LEVEL, value):
                raise invalid(f"query.{name}", f"{value!r} is not `theme:level` (level 0–5)")
    return DirectoryFilter(
        q=q,
        country=country,
        corridor=corridor.value if corridor else None,
        offers=_theme_levels(offers, "offers"),
        needs=_theme_levels(needs, "needs"),
        population_min=population_min,
        population_max=population_max,
        status=status,
        verified=verified,
        stale=stale,
    )


Filters = Annotated[DirectoryFilter, Depends(directory_filter)]


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=CityOut, responses=problem_responses(401, 403, 409, 422)
)
async def register_city(
    body: CityCreate, response: Response, session: SessionDep, runtime: RuntimeDep, user: Registrar
):
    """Register a city (published, or a draft); `profiles.city.registered.v1` goes out after commit."""
    city = await service.create(session=session, relay=runtime.relay, user=user, data=body)
    response.headers["Location"] = f"/api/v1/cities/{city.id}"
    _etag(response, city)
    return await _out(session, city, user)


@router.get("", response_model=Page[CityOut], responses=problem_responses(401, 422))
async def directory(
    session: SessionDep, page: PageDep, user: CurrentUser, filters: Filters, sort: SortKey = SortKey.name
):
    """The directory: search any script (`q`), filter, sort, page (with the total)."""
    items, total = await service.directory(
        session=session, filters=filters, sort=sort, limit=page.limit, offset=page.offset
    )
    partners = await service.partners_of(session, [c.id for c in items])
    out = [service.to_out(c, partners[c.id], user) for c in items]
    return Page[CityOut](items=out, total=total, limit=page.limit, offset=page.offset)


@router.get(
    "/export",
    responses={
        200: {"content": {"text/csv": {}, "application/json": {}}, "description": "The filtered directory"},
        **problem_responses(401, 422),
    },
)
async def export(
    session: SessionDep,
    user: CurrentUser,
    filters: Filters,
    format: Literal["csv", "json"] = "csv",
    sort: SortKey = SortKey.name,
):
    """The whole filtered directory as CSV (the import's columns) or JSON; contacts are never exported."""
    rows = await service.export(session=session, filters=filters, sort=sort)
    profiles = [service.to_out(c, p, user).model_dump(mode="json", exclude={"contacts"}) for c, p in rows]
    if format == "json":
        return profiles
    return PlainTextResponse(
        tabular.to_csv(profiles),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="cities.csv"'},
    )


@router.post(
    "/import",
    response_model=ImportReport,
    responses=problem_responses(401, 403, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {}}},
            },
            "required": True,
        }
    },
)
async def import_cities(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: Registrar,
    all_or_nothing: bool = Query(False, description="Keep nothing if any row is bad"),
):
    """Import profiles from CSV (`text/csv`) or JSON; each row is validated and reported by line.

    Rows with a GeoNames id or external id that is already known update that profile (re-imports do not duplicate).
    """
    rows = _parse_upload(await _read_body(request), request.headers.get("content-type", ""))
    return await service.import_rows(
        session=session, relay=runtime.relay, user=user, rows=rows, all_or_nothing=all_or_nothing
    )


@router.post(
    "/partnerships/import",
    response_model=PartnershipReport,
    responses=problem_responses(401, 403, 413, 422),
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}},
)
async def import_partnerships(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: Registrar,
    source: Annotated[str, Query(max_length=60, pattern=r"^[a-z0-9_.-]+$")] = "twin_cities",
):
    """Record real partnerships (`city1,country1,lat1,lng1,city2,country2,lat2,lng2` rows) among the profiles."""
    try:
        rows = read_twin_rows((await _read_body(request)).decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid("body", str(exc)) from exc
    return await service.import_partnerships(session=session, relay=runtime.relay, user=user, rows=rows, source=source)


async def _read_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > IMPORT_MAX_BYTES:
            raise Problem(413, "Request body too large", f"imports are limited to {IMPORT_MAX_BYTES // 2**20} MB")
    return bytes(body)


def _parse_upload(body: bytes, content_type: str) -> list[tuple[int, dict]]:
    try:
        text = body.decode("utf-8-sig")
        if content_type.startswith("text/csv"):
            return tabular.parse_csv(text)
        if content_type.startswith("application/json"):
            return tabular.parse_json(text)
    except UnicodeDecodeError as exc:
        raise invalid("body", "the file is not UTF-8") from exc
    except tabular.BadFile as exc:
        raise invalid("body", str(exc)) from exc
    raise Problem(415, "Unsupported media type", "send text/csv or application/json", type_="/problems/media-type")


@router.get("/{city_id}", response_model=CityOut, responses=problem_responses(401, 422, described=NO_CITY))
async def get_city(city_id: IdPath, response: Response, session: SessionDep, user: CurrentUser):
    """A profile; contacts only for the city's officials, coordinators and admins."""
    city = await service.get(session=session, city_id=city_id)
    _etag(response, city)
    return await _out(session, city, user)


async def _update(session, runtime, response: Response, user: Principal, city_id: str, body, if_match: str | None):
    city = await service.update(
        session=session, relay=runtime.relay, user=user, city_id=city_id, data=body, if_match=if_match
    )
    _etag(response, city)
    return await _out(session, city, user)


@router.put(
    "/{city_id}", response_model=CityOut, responses=problem_responses(401, 403, 409, 412, 422, described=NO_CITY)
)
async def replace_city(
    city_id: IdPath,
    body: CityFields,
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
    if_match: IfMatch = None,
):
    """Replace every editable field (send `If-Match` with the ETag you read)."""
    return await _update(session, runtime, response, user, city_id, body, if_match)


@router.patch(
    "/{city_id}", response_model=CityOut, responses=problem_responses(401, 403, 409, 412, 422, described=NO_CITY)
)
async def update_city(
    city_id: IdPath,
    body: CityUpdate,
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
    if_match: IfMatch = None,
):
    """Change some fields; send the `ETag` you read as `If-Match` to refuse overwriting someone else's change."""
    return await _update(session, runtime, response, user, city_id, body, if_match)


@router.post(
    "/{city_id}/{action}",
    response_model=CityOut,
    responses=problem_responses(401, 403, 409, 412, 422, described=NO_CITY),
)
async def change_status(
    city_id: IdPath,
    action: Literal["publish", "retire", "verify", "confirm"],
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
    if_match: IfMatch = None,
):
    """`publish` a draft, `retire`, `verify` (coordinators, admins) or `confirm` the profile is still accurate."""
    city = await service.change_status(
        session=session, relay=runtime.relay, user=user, city_id=city_id, action=action, if_match=if_match
    )
    _etag(response, city)
    return await _out(session, city, user)


@router.get(
    "/{city_id}/history", response_model=Page[ChangeOut], responses=problem_responses(401, 422, described=NO_CITY)
)
async def city_history(city_id: IdPath, session: SessionDep, page: PageDep, _: CurrentUser):
    """Every change: who, when, which fields, old → new (newest first)."""
    items, total = await service.history(session=session, city_id=city_id, limit=page.limit, offset=page.offset)
    return Page[ChangeOut](items=items, total=total, limit=page.limit, offset=page.offset)
