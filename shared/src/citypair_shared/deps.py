"""FastAPI dependencies every service's router uses."""

from collections.abc import AsyncIterator
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_shared.runtime import Runtime

MAX_PAGE_SIZE = 100
# Ids are UUIDs; anything longer than one, or with other characters, names nothing (and never reaches a database).
ID_PATTERN = r"^[A-Za-z0-9-]{1,36}$"


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.runtime.session_factory() as session:
        yield session


class PageParams(BaseModel):
    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


IdPath = Annotated[str, Path(min_length=1, max_length=36, pattern=ID_PATTERN, description="An id (a UUID)")]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
PageDep = Annotated[PageParams, Depends(page_params)]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
