import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_pilot_zones import importing, service, sweeper, tabular
from citypair_pilot_zones.schemas import (
    AssignIn,
    CommentIn,
    OpenPilotZone,
    ProposalBoard,
    ProposalComment,
    ProposalCreate,
    ProposalOut,
    ProposalTimelineEntry,
    ProposalUpdate,
    StaleSweepReport,
    TransitionIn,
)
from citypair_pilot_zones.service import ProposalFilter
from citypair_pilot_zones.workflow import Status
from citypair_shared import bulk, open_data
from citypair_shared.auth import CurrentUser, Principal, forbidden, require_roles
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
from citypair_shared.idempotency import WITHOUT_IDEMPOTENCY_KEY
from citypair_shared.problems import problem_responses
from citypair_shared.themes import ThemeId
from citypair_shared.upload import (
    EXCEL_BOM,
    AllOrNothing,
    Bom,
    import_media,
    import_route,
    read_body,
    refusing_bad_files,
    template_response,
)
from citypair_shared.versions import IfMatch, set_etag
from citypair_shared.xlsx import XLSX_MEDIA, stream_workbook

router = APIRouter(prefix="/api/v1/pilot-zones", tags=["pilot zones"])
open_data_router = APIRouter(prefix="/api/v1/open-data", tags=["open data"])
TABLE_FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
NO_PROPOSAL = {404: "No such pilot zone"}
Reviewer = Annotated[Principal, require_roles("admin", "coordinator")]
# What an import's CSV must start with at least (the export's columns are all read); U+0000 is refused anywhere.
PILOT_ZONES_CSV = {"type": "string", "pattern": r"^title(\r?\n[^\u0000]*)?$"}


async def _out(session, proposal, user: Principal, runtime) -> ProposalOut:
    return (await service.to_out_many(session, [proposal], user, stale_after=sweeper.stale_after(runtime)))[0]


async def proposal_filter(
    status: Status | None = None,
    city_id: Annotated[str | None, Query(min_length=1, max_length=36, description="A member city")] = None,
    theme: ThemeId | None = None,
    coordinator_id: Annotated[str | None, Query(min_length=1, max_length=36)] = None,
    overdue: Annotated[bool | None, Query(description="With (true) or without (false) an overdue milestone")] = None,
) -> ProposalFilter:
    return ProposalFilter(
        status=status.value if status else None,
        city_id=city_id,
        theme=theme.value if theme else None,
        coordinator_id=coordinator_id,
        overdue=overdue,
    )


Filters = Annotated[ProposalFilter, Depends(proposal_filter)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProposalOut,
    responses=problem_responses(401, 403, 422, described={409: "An open proposal for these cities exists"}),
)
async def create_proposal(
    body: ProposalCreate, response: Response, session: SessionDep, runtime: RuntimeDep, user: CurrentUser
):
    """Draft a pilot-zone proposal for two or more known cities, one of them the caller's."""
    proposal = await service.create(session=session, user=user, data=body)
    response.headers["Location"] = f"/api/v1/pilot-zones/{proposal.id}"
    set_etag(response, proposal.version)
    return await _out(session, proposal, user, runtime)


@router.get("", response_model=Page[ProposalOut], responses=problem_responses(401, 422))
async def list_proposals(
    session: ReadSessionDep, runtime: RuntimeDep, page: PageDep, user: CurrentUser, filters: Filters
):
    """Proposals, newest first, filtered by status, member city, theme, coordinator, overdue milestones."""
    items, total = await service.list_proposals(session=session, limit=page.limit, offset=page.offset, filters=filters)
    out = await service.to_out_many(session, items, user, stale_after=sweeper.stale_after(runtime))
    return Page[ProposalOut](items=out, total=total, limit=page.limit, offset=page.offset)


@router.get("/board", response_model=ProposalBoard, responses=problem_responses(401))
async def board(session: SessionDep, runtime: RuntimeDep, _: CurrentUser):
    """Counts per status (for a board), and how many are stale or have an overdue milestone."""
    return await service.board(session=session, stale_after=sweeper.stale_after(runtime))


@router.get(
    "/export",
    responses={
        200: {
            "content": {"text/csv": {}, "application/json": {}, XLSX_MEDIA: {}},
            "description": "The filtered proposals",
        },
        **problem_responses(401, 403, 422),
    },
)
async def export_proposals(
    session: StreamingSessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
    filters: Filters,
    format: Literal["csv", "json", "xlsx"] = "csv",
    bom: Bom = False,
):
    """Proposals as CSV, XLSX or JSON: coordinators and admins export all, officials those of their cities.

    Streamed as they are read, a batch at a time (a database failure midway cuts the response short); an XLSX
    workbook is written to a temporary file in bounded memory and sent once complete.
    """
    if not user.has_role("admin", "coordinator"):
        if not user.has_role("official"):
            raise forbidden("exports are for coordinators, admins and officials of member cities")
        filters = ProposalFilter(**{**filters.__dict__, "only_cities": frozenset(user.city_ids)})
    batches = _exported(session, service.export(session=session, filters=filters), user, sweeper.stale_after(runtime))
    if format == "json":
        return StreamingResponse(_json_export(batches), media_type="application/json")
    if format == "xlsx":
        return StreamingResponse(
            stream_workbook(tabular.SHEET, tabular.COLUMNS, _rows(batches)),
            media_type=XLSX_MEDIA,
            headers={"Content-Disposition": 'attachment; filename="pilot-zones.xlsx"'},
        )
    return StreamingResponse(
        _csv_export(batches, bom=bom),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="pilot-zones.csv"'},
    )


async def _exported(
    session: AsyncSession, batches: AsyncIterator[list], user: Principal, stale_after: timedelta
) -> AsyncIterator[list[ProposalOut]]:
    async for batch in batches:
        yield await service.to_out_many(session, batch, user, stale_after=stale_after)


# Each batch is written in a worker thread (CPU work): the event loop serves other requests meanwhile.
async def _csv_export(batches: AsyncIterator[list[ProposalOut]], *, bom: bool) -> AsyncIterator[str]:
    yield (EXCEL_BOM if bom else "") + tabular.csv_header()
    async for batch in batches:
        yield await asyncio.to_thread(tabular.csv_rows, batch)


async def _rows(batches: AsyncIterator[list[ProposalOut]]) -> AsyncIterator[list[dict]]:
    async for batch in batches:
        yield [tabular.row(p) for p in batch]


async def _json_export(batches: AsyncIterator[list[ProposalOut]]) -> AsyncIterator[str]:
    separator = "["
    async for batch in batches:
        yield separator + await asyncio.to_thread(_json_items, batch)
        separator = ","
    yield "[]" if separator == "[" else "]"


def _json_items(batch: list[ProposalOut]) -> str:
    # What the exporting user may do is not the proposal's data.
    return ",".join(p.model_dump_json(exclude={"allowed_transitions", "editable", "confirmable"}) for p in batch)


@router.get(
    "/import/template",
    responses={
        200: {"content": {"text/csv": {}, XLSX_MEDIA: {}}, "description": "The import's columns and an example row"},
        **problem_responses(401, 422),
    },
)
async def pilot_zone_import_template(_: CurrentUser, format: Literal["csv", "xlsx"] = "xlsx", bom: Bom = False):
    """A file to fill in for an import: its header row and one example row (put your cities' ids in it); an XLSX
    template also has a `columns` sheet describing each column (type, required, example), drawn from the schema."""
    return await template_response(
        format, bom=bom, name="pilot-zones", csv_template=tabular.template_csv, xlsx_template=tabular.template_xlsx
    )


@router.post("/import", **import_route(PILOT_ZONES_CSV))
async def import_pilot_zones(
    request: Request,
    runtime: RuntimeDep,
    claim: ClaimDep,
    user: CurrentUser,
    all_or_nothing: AllOrNothing = False,
):
    """Draft proposals from CSV (`text/csv`: UTF-8, UTF-16 or GB18030; comma, semicolon or tab), XLSX (its
    `pilot zones` sheet, or its first) or JSON (an array of drafts, as `POST /api/v1/pilot-zones` takes them); each
    row is checked and written as that POST does (an official of one of its cities drafts it; a caller who is no
    official is 403) and reported by line (a sheet's row number). A cell holding a formula is refused (the row names
    its column and cell).

    The columns are the export's: a row whose `id` names a proposal here edits it as `PATCH` does, with the row's
    `version` as `If-Match` (a row that changes nothing is `unchanged`), so an export imports back; the other
    read-only columns are ignored. At most `CITYPAIR_PILOT_ZONES_IMPORT_MAX_ROWS` rows (50,000): a larger file is
    refused whole (413).
    """
    settings, media = runtime.settings, import_media(request)
    body = await read_body(request)
    with refusing_bad_files():
        args = settings.database_url, user, body, media, settings.import_max_rows, all_or_nothing
        report = await bulk.in_worker_claiming(claim, importing.import_file, *args)
    if report is None:  # after the file's checks, as `POST /api/v1/pilot-zones` checks its body first
        raise forbidden("only officials draft pilot zones (each for one of their cities)", required_roles=["official"])
    return report


@router.post(
    "/stale-sweep",
    response_model=StaleSweepReport,
    responses=problem_responses(401, 403),
    openapi_extra=WITHOUT_IDEMPOTENCY_KEY,  # a sweep is safe to repeat
)
async def stale_sweep(runtime: RuntimeDep, _: Reviewer):
    """Run the stale sweep now (it also runs periodically): flags stale active proposals, one event per episode."""
    return await sweeper.sweep_once(runtime)


@router.get("/{proposal_id}", response_model=ProposalOut, responses=problem_responses(401, 422, described=NO_PROPOSAL))
async def get_proposal(
    proposal_id: IdPath, response: Response, session: SessionDep, runtime: RuntimeDep, user: CurrentUser
):
    proposal = await service.get(session=session, proposal_id=proposal_id)
    set_etag(response, proposal.version)
    return await _out(session, proposal, user, runtime)


@router.patch(
    "/{proposal_id}",
    response_model=ProposalOut,
    responses=problem_responses(
        401, 403, 412, 422, described={**NO_PROPOSAL, 409: "Not editable in this state, or a duplicate"}
    ),
)
async def update_proposal(
    proposal_id: IdPath,
    body: ProposalUpdate,
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
    if_match: IfMatch = None,
):
    """Edit a draft (member officials), or track delivery (milestones, KPIs, documents) once approved;
    send the `ETag` you read as `If-Match` to refuse overwriting someone else's change."""
    proposal = await service.update(session=session, user=user, proposal_id=proposal_id, data=body, if_match=if_match)
    set_etag(response, proposal.version)
    return await _out(session, proposal, user, runtime)


@router.post(
    "/{proposal_id}/transitions",
    response_model=ProposalOut,
    responses=problem_responses(
        401, 403, 412, 422, described={**NO_PROPOSAL, 409: "The proposal's state does not allow this move"}
    ),
)
async def transition(
    proposal_id: IdPath,
    body: TransitionIn,
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
    if_match: IfMatch = None,
):
    """Move the proposal to `to`: 403 if this user may not, 409 if the state does not allow it (both list what may).

    Submitting needs every member city's confirmation (409 lists the `unconfirmed`)."""
    proposal = await service.transition(
        session=session,
        relay=runtime.relay,
        user=user,
        proposal_id=proposal_id,
        to=body.to,
        comment=body.comment,
        if_match=if_match,
    )
    set_etag(response, proposal.version)
    return await _out(session, proposal, user, runtime)


@router.post(
    "/{proposal_id}/members/{city_id}/confirm",
    response_model=ProposalOut,
    responses=problem_responses(
        401, 403, 422, described={404: "No such pilot zone or member city", 409: "Not open for confirmation"}
    ),
)
async def confirm_membership(
    proposal_id: IdPath,
    city_id: IdPath,
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
):
    """An official of `city_id` confirms the city's membership (every member must, before submission)."""
    proposal = await service.confirm_membership(session=session, user=user, proposal_id=proposal_id, city_id=city_id)
    set_etag(response, proposal.version)
    return await _out(session, proposal, user, runtime)


@router.post(
    "/{proposal_id}/assign",
    response_model=ProposalOut,
    responses=problem_responses(401, 403, 422, described={**NO_PROPOSAL, 409: "The proposal is closed"}),
)
async def assign(
    proposal_id: IdPath, body: AssignIn, response: Response, session: SessionDep, runtime: RuntimeDep, user: Reviewer
):
    """Assign a coordinator (yourself by default); the assigned coordinator makes the decisions."""
    proposal = await service.assign(
        session=session, user=user, proposal_id=proposal_id, coordinator_id=body.coordinator_id, comment=body.comment
    )
    set_etag(response, proposal.version)
    return await _out(session, proposal, user, runtime)


@router.get(
    "/{proposal_id}/timeline",
    response_model=Page[ProposalTimelineEntry],
    responses=problem_responses(401, 422, described=NO_PROPOSAL),
)
async def timeline(proposal_id: IdPath, session: SessionDep, page: PageDep, user: CurrentUser):
    """Every change and transition, oldest first (append-only)."""
    items, total = await service.timeline(
        session=session, user=user, proposal_id=proposal_id, limit=page.limit, offset=page.offset
    )
    return Page[ProposalTimelineEntry](items=items, total=total, limit=page.limit, offset=page.offset)


@router.get(
    "/{proposal_id}/comments",
    response_model=Page[ProposalComment],
    responses=problem_responses(401, 422, described=NO_PROPOSAL),
)
async def list_comments(proposal_id: IdPath, session: SessionDep, page: PageDep, user: CurrentUser):
    """The comments, oldest first (threads by `parent_id`); private reviewer notes only for coordinators."""
    items, total = await service.comments(
        session=session, user=user, proposal_id=proposal_id, limit=page.limit, offset=page.offset
    )
    return Page[ProposalComment](items=items, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/{proposal_id}/comments",
    status_code=status.HTTP_201_CREATED,
    response_model=ProposalComment,
    responses=problem_responses(401, 403, 422, described=NO_PROPOSAL),
)
async def add_comment(proposal_id: IdPath, body: CommentIn, session: SessionDep, user: CurrentUser):
    """Comment (member officials, coordinators), or answer one with `parent_id`; `private` notes are coordinators'."""
    return await service.add_comment(session=session, user=user, proposal_id=proposal_id, data=body)


@open_data_router.get("/pilot-zones", response_model=Page[OpenPilotZone], responses=problem_responses(422))
async def open_pilot_zones(session: SessionDep, page: PageDep):
    """Approved, active and completed pilot zones as open data, readable without signing in."""
    items, total = await service.open_data(session=session, limit=page.limit, offset=page.offset)
    return Page[OpenPilotZone](items=items, total=total, limit=page.limit, offset=page.offset)


async def _open_rows(batches: AsyncIterator[list[dict]]) -> AsyncIterator[list[dict]]:
    async for batch in batches:
        yield [tabular.open_row(item) for item in batch]


def _open_file(format: str):
    async def open_pilot_zones_file(session: StreamingSessionDep):
        rows = _open_rows(service.open_export(session=session))
        return StreamingResponse(
            open_data.stream_table(open_data.PILOT_ZONE_COLUMNS, rows, format), media_type=TABLE_FORMATS[format]
        )

    return open_pilot_zones_file


# The Data Package's pilot-zones resource (its descriptor, and the other resources, are profiles').
for _format, _media in TABLE_FORMATS.items():
    open_data_router.add_api_route(
        f"/pilot-zones.{_format}",
        _open_file(_format),
        methods=["GET"],
        name=f"open_pilot_zones_{_format}",
        summary=f"The Data Package's `{open_data.resource_name('pilot-zones', _format)}` resource",
        description=open_data.TABLES["pilot-zones"][0] + ".",
        responses={200: {"content": {_media: {}}, "description": f"pilot-zones.{_format}"}},
    )
