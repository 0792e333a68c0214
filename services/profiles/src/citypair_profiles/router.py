import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import StringConstraints

from citypair_profiles import service, tabular
from citypair_profiles.cards import Cards, page_json
from citypair_profiles.partnering import read_twin_rows
from citypair_profiles.schemas import (
    ChangeOut,
    CityCreate,
    CityFields,
    CityOut,
    CityPoint,
    CityUpdate,
    Corridor,
    OpenCity,
    PartnershipReport,
    SortKey,
)
from citypair_profiles.service import DirectoryFilter
from citypair_shared import bulk, open_data
from citypair_shared.auth import CurrentUser, Principal, require_roles
from citypair_shared.deps import (
    ClaimDep,
    IdPath,
    Page,
    PageDep,
    ReadSessionDep,
    RuntimeDep,
    SessionDep,
    StreamingSessionDep,
)
from citypair_shared.problems import invalid, problem_responses
from citypair_shared.themes import THEME_IDS
from citypair_shared.upload import (
    EXCEL_BOM,
    AllOrNothing,
    BadFile,
    Bom,
    TooManyRows,
    import_media,
    import_route,
    read_body,
    refused,
    refusing_bad_files,
    template_response,
    too_many_rows,
)
from citypair_shared.versions import IfMatch, etag, set_etag
from citypair_shared.vocabulary import CityStatus
from citypair_shared.xlsx import XLSX_MEDIA, stream_workbook

router = APIRouter(prefix="/api/v1/cities", tags=["cities"])
open_data_router = APIRouter(prefix="/api/v1/open-data", tags=["open data"])
NO_CITY = {404: "No such city"}
Registrar = Annotated[Principal, require_roles("admin", "coordinator")]
THEME_LEVEL = rf"^({'|'.join(THEME_IDS)}):[0-5]$"
ThemeLevel = Annotated[str, StringConstraints(pattern=THEME_LEVEL)]
# What an import's file must start with at least (the export's columns are all read); U+0000 is refused anywhere.
CITIES_CSV = {"type": "string", "pattern": r"^name(\r?\n[^\u0000]*)?$"}
PARTNERSHIPS_CSV = {
    "type": "string",
    "pattern": r"^city1,country1,lat1,lng1,city2,country2,lat2,lng2(\r?\n[^\u0000]*)?$",
}
JSON = "application/json"


async def _cards(request: Request) -> Cards:
    return request.app.state.cards


CardsDep = Annotated[Cards, Depends(_cards)]

# A profile's status changes: one operation each (`publishCity`, ...), each with its summary.
STATUS_ACTIONS = {
    "publish": "Publish a draft",
    "retire": "Retire the profile",
    "verify": "Verify the profile (coordinators, admins)",
    "confirm": "Confirm the profile is still accurate",
}
MAX_POPULATION = 100_000_000  # as CityCreate (and within the database's integer range)
POINTS_MAX_PAGE = 5000  # a map's page: 25,000 cities in five requests


async def _out(session, city, user: Principal) -> CityOut:
    partners = await service.partners_of(session, [city.id])
    return service.to_out(city, partners[city.id], user)


def _theme_levels(values: list[str]) -> tuple[tuple[str, int], ...]:
    return tuple((theme, int(level)) for theme, level in (value.split(":") for value in values))


async def directory_filter(
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Name or alternate name, any script")
    ] = None,
    country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2")] = None,
    corridor: Corridor | None = None,
    offers: Annotated[
        list[ThemeLevel], Query(max_length=5, description="`theme:level`: offers the theme at that level or more")
    ] = [],  # noqa: B006 - FastAPI copies defaults
    needs: Annotated[
        list[ThemeLevel], Query(max_length=5, description="`theme:level`: needs it at that level or more")
    ] = [],  # noqa: B006
    population_min: Annotated[int | None, Query(ge=0, le=MAX_POPULATION)] = None,
    population_max: Annotated[int | None, Query(ge=0, le=MAX_POPULATION)] = None,
    status: CityStatus | None = None,
    verified: bool | None = None,
    stale: bool | None = None,
) -> DirectoryFilter:
    return DirectoryFilter(
        q=q,
        country=country,
        corridor=corridor.value if corridor else None,
        offers=_theme_levels(offers),
        needs=_theme_levels(needs),
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
    set_etag(response, city.version)
    return service.to_out(city, [], user)  # a new city has no partners yet


@router.get("", response_model=Page[CityOut], responses=problem_responses(401, 422))
async def directory(
    session: ReadSessionDep,
    page: PageDep,
    user: CurrentUser,
    filters: Filters,
    cards: CardsDep,
    sort: SortKey = SortKey.name,
):
    """The directory: search any script (`q`), filter, sort, page (with the total)."""
    versions, total = await service.directory(
        session=session, filters=filters, sort=sort, limit=page.limit, offset=page.offset
    )
    items = await cards.of(session, versions, user)
    return Response(page_json(items, total=total, limit=page.limit, offset=page.offset), media_type=JSON)


@router.get(
    "/points",
    response_model=Page[CityPoint],
    responses={304: {"description": "No city changed since the ETag sent"}, **problem_responses(401, 422)},
)
async def city_points(
    session: SessionDep,
    response: Response,
    _: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=POINTS_MAX_PAGE)] = 1000,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    if_none_match: Annotated[str | None, Header(max_length=100)] = None,
):
    """Published cities as a map draws them (place, themes, corridors, partners), up to 5,000 a page.

    The `ETag` names the state of every city, whichever page: send it as `If-None-Match` for a 304 while no city
    has changed (a map's cache asks the first page only).
    """
    tag = f'W/"points-{await service.points_state(session)}"'
    if if_none_match and (if_none_match.strip() == "*" or tag in (t.strip() for t in if_none_match.split(","))):
        return Response(status_code=304, headers={"ETag": tag})
    items, total = await service.points(session=session, limit=limit, offset=offset)
    response.headers["ETag"] = tag
    return Page[CityPoint](items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/export",
    responses={
        200: {
            "content": {"text/csv": {}, "application/json": {}, XLSX_MEDIA: {}},
            "description": "The filtered directory",
        },
        **problem_responses(401, 422),
    },
)
async def export_cities(
    session: StreamingSessionDep,
    user: CurrentUser,
    filters: Filters,
    format: Literal["csv", "json", "xlsx"] = "csv",
    sort: SortKey = SortKey.name,
    bom: Bom = False,
):
    """The whole filtered directory as CSV or XLSX (the import's columns) or JSON; contacts are never exported.

    Streamed as it is read, a batch of cities at a time: CSV and JSON rows leave at once, whatever the size; an XLSX
    workbook is written to a temporary file in bounded memory and sent once complete. (Should the database fail
    midway, the response ends without its last chunk: a client sees it cut short.)
    """
    batches = service.export(session=session, filters=filters, sort=sort)
    if format == "json":
        return StreamingResponse(_json_export(batches, user), media_type="application/json")
    if format == "xlsx":
        rows = _export_rows(batches, user)
        return StreamingResponse(
            stream_workbook(tabular.SHEET, tabular.EXPORT_COLUMNS, rows),
            media_type=XLSX_MEDIA,
            headers={"Content-Disposition": 'attachment; filename="cities.xlsx"'},
        )
    return StreamingResponse(
        _csv_export(batches, user, bom=bom),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="cities.csv"'},
    )


@router.get(
    "/import/template",
    responses={
        200: {"content": {"text/csv": {}, XLSX_MEDIA: {}}, "description": "The import's columns and an example row"},
        **problem_responses(401, 422),
    },
)
async def import_template(_: CurrentUser, format: Literal["csv", "xlsx"] = "xlsx", bom: Bom = False):
    """A file to fill in for an import: its header row and one example row; an XLSX template also has a `columns`
    sheet describing each column (name, type, required, example), drawn from the profile's schema."""
    return await template_response(
        format, bom=bom, name="cities", csv_template=tabular.template_csv, xlsx_template=tabular.template_xlsx
    )


# Each batch is written in a worker thread (CPU work): the event loop serves other requests meanwhile.
async def _csv_export(batches: AsyncIterator[list], user: Principal, *, bom: bool) -> AsyncIterator[str]:
    yield (EXCEL_BOM if bom else "") + tabular.csv_header()
    async for batch in batches:
        yield await asyncio.to_thread(_csv_lines, batch, user)


async def _export_rows(batches: AsyncIterator[list], user: Principal) -> AsyncIterator[list[dict]]:
    async for batch in batches:
        yield await asyncio.to_thread(_rows, batch, user)


async def _json_export(batches: AsyncIterator[list], user: Principal) -> AsyncIterator[str]:
    separator = "["
    async for batch in batches:
        yield separator + await asyncio.to_thread(_json_items, batch, user)
        separator = ","
    yield "[]" if separator == "[" else "]"


def _exported(batch: list, user: Principal) -> list[CityOut]:
    return [service.to_out(city, partners, user) for city, partners in batch]


def _rows(batch: list, user: Principal) -> list[dict]:
    return [tabular.export_row(c.model_dump(mode="json", exclude={"contacts"})) for c in _exported(batch, user)]


def _csv_lines(batch: list, user: Principal) -> str:
    return tabular.csv_rows([c.model_dump(mode="json", exclude={"contacts"}) for c in _exported(batch, user)])


def _json_items(batch: list, user: Principal) -> str:
    return ",".join(c.model_dump_json(exclude={"contacts"}) for c in _exported(batch, user))


@router.post("/import", **import_route(CITIES_CSV))
async def import_cities(
    request: Request,
    runtime: RuntimeDep,
    claim: ClaimDep,
    user: Registrar,
    all_or_nothing: AllOrNothing = False,
):
    """Import profiles from CSV (`text/csv`: UTF-8, UTF-16 or GB18030; comma, semicolon or tab), XLSX (its `cities`
    sheet, or its first) or JSON; each row is validated and reported by line (a sheet's row number). A cell holding a
    formula is refused (the row names its column and cell): an import takes values only.

    Rows whose `id` (an export's), GeoNames id or external id is already known update that profile: re-imports do
    not duplicate, and an export imports back (its read-only columns are ignored). At most
    `CITYPAIR_PROFILES_IMPORT_MAX_ROWS` rows (50,000): a larger file is refused whole (413).
    """
    settings, media = runtime.settings, import_media(request)
    body = await read_body(request)
    with refusing_bad_files():  # checked whole and imported in the bulk worker process, at a lower priority
        args = settings.database_url, user, body, media, settings.import_max_rows, all_or_nothing
        report = await bulk.in_worker_claiming(claim, service.import_file, *args)
    runtime.relay.wake()
    return report


@router.post(
    "/partnerships/import",
    response_model=PartnershipReport,
    responses=problem_responses(401, 403, 413, 422),
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": PARTNERSHIPS_CSV}}, "required": True}},
)
async def import_partnerships(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: Registrar,
    source: Annotated[str, Query(max_length=60, pattern=r"^[a-z0-9_.-]+$")] = "twin_cities",
):
    """Record real partnerships (`city1,country1,lat1,lng1,city2,country2,lat2,lng2` rows) among the profiles."""
    body = await read_body(request)
    try:
        rows = await asyncio.to_thread(
            lambda: read_twin_rows(body.decode("utf-8-sig"), max_rows=runtime.settings.import_max_rows)
        )
    except TooManyRows as exc:
        raise too_many_rows(exc) from exc
    except BadFile as exc:
        raise refused(exc) from exc
    except UnicodeDecodeError as exc:
        raise invalid("body", str(exc), code="file_not_utf8") from exc
    return await service.import_partnerships(session=session, relay=runtime.relay, user=user, rows=rows, source=source)


@router.get("/{city_id}", response_model=CityOut, responses=problem_responses(401, 422, described=NO_CITY))
async def get_city(city_id: IdPath, session: ReadSessionDep, user: CurrentUser, cards: CardsDep):
    """A profile; contacts only for the city's officials, coordinators and admins."""
    card = await cards.one(session, city_id, user)
    return Response(card.json, media_type=JSON, headers={"ETag": etag(card.version)})


async def _update(session, runtime, response: Response, user: Principal, city_id: str, body, if_match: str | None):
    city = await service.update(
        session=session, relay=runtime.relay, user=user, city_id=city_id, data=body, if_match=if_match
    )
    set_etag(response, city.version)
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


def _status_change(action: str):
    async def change_status(
        city_id: IdPath,
        response: Response,
        session: SessionDep,
        runtime: RuntimeDep,
        user: CurrentUser,
        if_match: IfMatch = None,
    ):
        city = await service.change_status(
            session=session, relay=runtime.relay, user=user, city_id=city_id, action=action, if_match=if_match
        )
        set_etag(response, city.version)
        return await _out(session, city, user)

    return change_status


for _action, _summary in STATUS_ACTIONS.items():
    router.add_api_route(
        f"/{{city_id}}/{_action}",
        _status_change(_action),
        methods=["POST"],
        name=f"{_action}_city",
        summary=_summary,
        response_model=CityOut,
        responses=problem_responses(401, 403, 409, 412, 422, described=NO_CITY),
    )


@router.get(
    "/{city_id}/history", response_model=Page[ChangeOut], responses=problem_responses(401, 422, described=NO_CITY)
)
async def city_history(city_id: IdPath, session: SessionDep, page: PageDep, _: CurrentUser):
    """Every change: who, when, which fields, old → new (newest first)."""
    items, total = await service.history(session=session, city_id=city_id, limit=page.limit, offset=page.offset)
    return Page[ChangeOut](items=items, total=total, limit=page.limit, offset=page.offset)


@open_data_router.get(
    "/cities", response_model=Page[OpenCity], response_model_exclude_unset=True, responses=problem_responses(422)
)
async def open_cities(
    session: SessionDep,
    page: PageDep,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Name or alternate name, any script")
    ] = None,
    country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2")] = None,
):
    """Published cities as open data, readable without signing in: id, name and country, and only the fields each
    city made public (`public_fields`); never contacts."""
    items, total = await service.open_cities(
        session=session, country=country, q=q, limit=page.limit, offset=page.offset
    )
    return Page[OpenCity](items=items, total=total, limit=page.limit, offset=page.offset)


TABLE_FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


@open_data_router.get(
    "/datapackage.json",
    responses={200: {"content": {"application/json": {}}, "description": "The Data Package descriptor"}},
)
async def data_package():
    """The open data as a Frictionless Data Package: every resource (cities, partnerships, pilot zones; CSV and
    JSON, beside this file) with its Table Schema, licences and sources."""
    return open_data.descriptor()


@open_data_router.get(
    "/dcat.jsonld",
    responses={200: {"content": {"application/ld+json": {}}, "description": "A DCAT-AP dcat:Dataset"}},
)
async def dcat_entry():
    """The dataset as a DCAT-AP `dcat:Dataset` (JSON-LD), a distribution per resource file."""
    return JSONResponse(open_data.dcat_entry(), media_type="application/ld+json")


async def _open_rows(batches: AsyncIterator[list[dict]]) -> AsyncIterator[list[dict]]:
    async for batch in batches:
        yield [tabular.open_row(city) for city in batch]


def _table_file(table: str, format: str):
    columns = {"cities": open_data.CITY_COLUMNS, "partnerships": open_data.PARTNERSHIP_COLUMNS}[table]

    async def table_file(session: StreamingSessionDep):
        if table == "cities":
            batches = _open_rows(service.open_export(session=session))
        else:
            batches = service.open_partnerships(session=session)
        return StreamingResponse(open_data.stream_table(columns, batches, format), media_type=TABLE_FORMATS[format])

    return table_file


# The package's resources that are profiles' (pilot_zones serves its own beside them).
for _table, _format in itertools.product(("cities", "partnerships"), TABLE_FORMATS):
    open_data_router.add_api_route(
        f"/{_table}.{_format}",
        _table_file(_table, _format),
        methods=["GET"],
        name=f"open_{_table}_{_format}",
        summary=f"The Data Package's `{open_data.resource_name(_table, _format)}` resource",
        description=open_data.TABLES[_table][0] + ".",
        responses={200: {"content": {TABLE_FORMATS[_format]: {}}, "description": f"{_table}.{_format}"}},
    )
