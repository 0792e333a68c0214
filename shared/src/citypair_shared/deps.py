"""FastAPI dependencies every service's router uses.

Every dependency is `async def`, the pure ones too: FastAPI runs a plain `def` in a worker thread, a thread hop
for each request (4-6 % of a directory or pilot-zone list request's CPU, by py-spy).
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_shared.idempotency import Claim, claim_key
from citypair_shared.runtime import Runtime

MAX_PAGE_SIZE = 100
# Ids are UUIDs; anything longer than one, or with other characters, names nothing (and never reaches a database).
ID_PATTERN = r"^[A-Za-z0-9-]{1,36}$"


NUL = "\x00"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def reject_nul(request: Request) -> None:
    """No text anywhere may hold U+0000: PostgreSQL cannot store it and nothing here needs it (422, naming where).

    Every service app depends on this (`build_app`), so each input is checked once, before any route runs:
    the path, the query and forms here; JSON bodies in `strict_json.reject_bad_json` (`build_app` adds both).
    """
    found = [("path", name) for name, value in request.path_params.items() if NUL in str(value)]
    found += [("query", name) for name, value in request.query_params.multi_items() if NUL in name + value]
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # Only where the route reads a form (FastAPI has parsed it already: this reuses its parse).
    if content_type in FORM_TYPES and getattr(request.scope.get("route"), "body_field", None) is not None:
        form = await request.form()
        found += [("body", k) for k, v in form.multi_items() if NUL in k or (isinstance(v, str) and NUL in v)]
    if found:
        message = "must not contain the NUL character (U+0000)"
        raise RequestValidationError([{"type": "string_nul", "loc": loc, "msg": message} for loc in found])


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


ClaimDep = Annotated[Claim | None, Depends(claim_key)]  # the request's Idempotency-Key, for work done elsewhere


async def get_session(request: Request, claim: ClaimDep) -> AsyncIterator[AsyncSession]:
    async with request.app.state.runtime.session_factory() as session:
        if claim is not None:
            claim.attach(session)  # the request's Idempotency-Key commits with its effect
        yield session


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.runtime.read_session_factory() as session:
        yield session


class PageParams(BaseModel):
    limit: int
    offset: int


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


IdPath = Annotated[str, Path(min_length=1, max_length=36, pattern=ID_PATTERN, description="An id (a UUID)")]
# An id in a body, as the paths take it: the models that strip whitespace would find `\t` empty, and no id holds one.
CityId = Annotated[str, Field(min_length=1, max_length=36, pattern=ID_PATTERN)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
# The request's session closes (its connection back to the pool) when the route returns, before the answer
# is sent: the Idempotency-Key's record of the answer needs a connection of its own then, and requests that
# each held one while waiting for a second would exhaust the pool and wait on each other until it timed out.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
# For a route that only reads: its statements run without a transaction around them (two round trips fewer, BEGIN
# and ROLLBACK, on PostgreSQL, whose READ COMMITTED gives each statement a snapshot of its own anyway). Never write
# through it: each statement would commit alone.
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
# For a streamed answer (an export), which reads through the session while it is sent.
StreamingSessionDep = Annotated[AsyncSession, Depends(get_session)]
PageDep = Annotated[PageParams, Depends(page_params)]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def _with_offset(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored in UTC); RFC 3339 `date-time` needs the offset.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


Timestamp = Annotated[datetime, AfterValidator(_with_offset)]
"""A `date-time` in a response, always with its UTC offset (whatever the database returns)."""
