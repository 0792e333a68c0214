"""Pilot-zone imports: each row of a CSV, XLSX or JSON file drafts a proposal as `POST /api/v1/pilot-zones` does,
or, if its `id` (an export's) names a proposal here, edits it as `PATCH` does, with the row's `version` as the
`If-Match`: the same checks, the same rule of who may, the same writes (`service.draft`, `service.edit`).

The file is checked and imported in the bulk worker process (citypair_shared.bulk: at a lower CPU priority, so the
service's other requests go first). Rows are read IMPORT_BATCH at a time, parsed and validated in a worker thread,
and written in one transaction,
committed at the end (with `all_or_nothing`, not at all if a row is rejected): memory holds a batch and the report.
"""

import asyncio
from collections.abc import Iterable
from functools import partial

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_pilot_zones import service
from citypair_pilot_zones.models import Proposal
from citypair_pilot_zones.schemas import ProposalCreate, ProposalUpdate
from citypair_pilot_zones.tabular import ImportedRow, Upload
from citypair_shared import bulk
from citypair_shared.auth import Principal
from citypair_shared.db import retry_on_conflict
from citypair_shared.idempotency import Claim
from citypair_shared.problems import Problem
from citypair_shared.upload import ImportReport, ImportRow, Media, finish, row_errors, validated
from citypair_shared.versions import etag

IMPORT_BATCH = 250
# The column a refusal that names none is about: the cities (one of them must be the caller's, and no other open
# proposal may have them all), the version (the row's is not the proposal's), the status (it allows no edit).
FIELD_OF_PROBLEM = {
    "/problems/forbidden": "city_ids",
    "/problems/duplicate": "city_ids",
    "/problems/stale": "version",
    "/problems/not-editable": "status",
}


def _model(row: ImportedRow) -> type[ProposalCreate | ProposalUpdate]:
    """A row with an `id` may be an edit (some fields); else a draft (a row whose `id` is not here is checked as a
    draft when that is known)."""
    return ProposalUpdate if row.proposal_id else ProposalCreate


def import_file(
    claim: Claim | None,
    database_url: str,
    user: Principal,
    body: bytes,
    media: Media,
    max_rows: int,
    all_or_nothing: bool,
) -> tuple[ImportReport | None, Claim | None]:
    """An uploaded file, checked whole (BadFile, TooManyRows, BadJson) and imported, in the bulk worker process
    (citypair_shared.bulk); None when the file is sound but the caller drafts nothing (not an official: 403)."""
    upload = Upload(body, media)
    upload.check(max_rows)
    if not user.has_role("official"):
        return None, claim
    use_case = partial(import_rows, user=user, rows=upload, all_or_nothing=all_or_nothing)
    return bulk.with_session(database_url, use_case, claim)


@retry_on_conflict
async def import_rows(
    *, session: AsyncSession, user: Principal, rows: Iterable[ImportedRow], all_or_nothing: bool
) -> ImportReport:
    """Validate every row; draft or edit with the good ones; the report, row by row."""
    try:
        return await _import(session, user, rows, all_or_nothing)
    except IntegrityError:
        # Another request drafted for the same cities meanwhile (the open proposals' unique member key): once
        # more from a fresh read, where such a row is a duplicate and reported so.
        await session.rollback()
        session.expunge_all()
        return await _import(session, user, rows, all_or_nothing)


async def _import(
    session: AsyncSession, user: Principal, rows: Iterable[ImportedRow], all_or_nothing: bool
) -> ImportReport:
    report: list[ImportRow] = []
    source = iter(rows)
    while batch := await asyncio.to_thread(validated, source, IMPORT_BATCH, _model):
        for row, data in batch:
            report.append(await _import_row(session, user, row, data))
        await session.flush()  # this batch's rows go out now, and its objects can be let go
    return await finish(session, report, all_or_nothing=all_or_nothing)


async def _import_row(session: AsyncSession, user: Principal, row: ImportedRow, data) -> ImportRow:
    """One row written (flushed later, not committed), or why not: every check runs before its writes."""
    if isinstance(data, list):
        return ImportRow(line=row.line, action="rejected", errors=data)
    try:
        proposal = await session.get(Proposal, row.proposal_id) if row.proposal_id else None
        if proposal is not None:
            changes = service.only_changes(proposal, data)
            if not changes.model_fields_set:
                return ImportRow(line=row.line, id=proposal.id, action="unchanged")
            if_match = None if row.version is None else etag(row.version)
            await service.edit(session=session, user=user, proposal=proposal, data=changes, if_match=if_match)
            return ImportRow(line=row.line, id=proposal.id, action="updated")
        if not isinstance(data, ProposalCreate):
            data = ProposalCreate.model_validate(row.fields, strict=False)
        proposal = await service.draft(session=session, user=user, data=data)
        return ImportRow(line=row.line, id=proposal.id, action="created")
    except ValidationError as exc:
        return ImportRow(line=row.line, action="rejected", errors=row_errors(exc))
    except Problem as exc:
        return ImportRow(line=row.line, action="rejected", errors=_problem_errors(exc))


def _problem_errors(problem: Problem) -> list[dict]:
    """A refusal as the row's errors: the fields it names, else the field it is about (or the row) and why; each of
    the rule's code and values if it names them, else of the problem's type (which a client says as the problem)."""
    kind = {} if problem.type == "about:blank" else {"type": problem.type}
    if named := problem.extra.get("errors"):
        return [{**kind, **error} for error in named]  # an error's own `type` (a rule's code) wins
    message = problem.detail or problem.title
    if existing := problem.extra.get("existing_id"):
        message += f" ({existing})"
    return [{"field": FIELD_OF_PROBLEM.get(problem.type, "row"), "message": message, **kind}]
