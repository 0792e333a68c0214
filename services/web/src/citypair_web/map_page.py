"""The world map: a canvas the browser draws (static/map.js) from one compact JSON of every published city and the
shipped land outline, and the same cities as a filtered, paged table for those who cannot use the map."""

import asyncio
import gzip
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from citypair_shared.geography import Corridor
from citypair_shared.themes import THEME_IDS, ThemeId
from citypair_web import forms
from citypair_web.graphics import HEIGHT, WIDTH, land_path
from citypair_web.pages import Page
from citypair_web.router import UserPage, api, failure

router = APIRouter(include_in_schema=False)
POINTS = "/api/v1/cities/points"
POINTS_PAGE = 5000  # profiles' largest page: 25,000 cities in five calls
LIST_PAGE = 50


class MapFilters(BaseModel):
    """What the map and its list filter on: the list asks profiles' directory, map.js applies the same rules."""

    offers: ThemeId | None = None
    needs: ThemeId | None = None
    level: int = Field(3, ge=1, le=5, description="the least level at which a theme counts as offered or needed")
    corridor: Corridor | None = None
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")

    def directory_params(self) -> dict:
        params: dict = {"status": "published"}
        if self.offers:
            params["offers"] = f"{self.offers}:{self.level}"
        if self.needs:
            params["needs"] = f"{self.needs}:{self.level}"
        if self.corridor:
            params["corridor"] = self.corridor
        if self.country:
            params["country"] = self.country
        return params

    def query(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump(mode="json").items() if v is not None}


def map_filters(params: Mapping[str, str]) -> tuple[MapFilters, dict[str, str]]:
    """The filters a page's query asks for, and {field: message} for each value left out as not understood."""
    kept, errors = {}, {}
    for name in MapFilters.model_fields:
        value = (params.get(name) or "").strip()
        value = value.upper() if name == "country" else value
        if not value:
            continue
        try:
            MapFilters.model_validate({name: value})
        except ValidationError as exc:
            errors[name] = exc.errors(include_url=False)[0]["msg"]
            continue
        kept[name] = value
    return MapFilters.model_validate(kept), errors


@router.get("/map", response_class=HTMLResponse)
async def world_map(page: UserPage, request: Request):
    filters, errors = map_filters(request.query_params)
    return page.render("map.html", filters=filters, errors=errors, theme_ids=THEME_IDS)


@router.get("/map/land.json")
async def land():
    """The land outline (public-domain Natural Earth, shipped): an SVG path the canvas draws, the same for everyone."""
    return JSONResponse(
        {"width": WIDTH, "height": HEIGHT, "path": land_path()}, headers={"Cache-Control": "public, max-age=86400"}
    )


@dataclass(frozen=True)
class MapData:
    """cities.json as sent, kept with the state of the cities it was built from (profiles' ETag)."""

    source_tag: str | None
    etag: str
    body: bytes
    gzipped: bytes


def compact(items: list[dict], source_tag: str | None) -> MapData:
    """The browser's copy of every published city: short keys, theme levels as one digit per theme (CPU work)."""
    cities = [
        {
            "id": c["id"],
            "name": c["name"],
            "lon": round(c["longitude"], 4),
            "lat": round(c["latitude"], 4),
            "country": c["country_code"],
            "offers": "".join(str(c["offers"].get(t, 0)) for t in THEME_IDS),
            "needs": "".join(str(c["needs"].get(t, 0)) for t in THEME_IDS),
            "corridors": c["corridors"],
            "partners": c["partner_ids"],
        }
        for c in items
    ]
    body = json.dumps({"themes": THEME_IDS, "cities": cities}, ensure_ascii=False, separators=(",", ":")).encode()
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    return MapData(source_tag=source_tag, etag=etag, body=body, gzipped=gzip.compress(body, compresslevel=5))


class MapUnavailable(Exception):
    """Profiles did not give the cities (its answer is kept, for the status)."""

    def __init__(self, response):
        self.response = response


async def map_data(page: Page) -> MapData:
    """The map's data, built by one request at a time: those that come while 25,000 cities are fetched and compacted
    wait and get that copy (one cheap revalidation each), rather than each fetching them all from profiles again."""
    state = page.request.app.state
    if not hasattr(state, "map_lock"):
        state.map_lock = asyncio.Lock()
    async with state.map_lock:
        return await _fetched_map_data(page)


async def _fetched_map_data(page: Page) -> MapData:
    """Every published city, from profiles in large pages; kept in this process and revalidated on each request.

    The first page is asked with the kept copy's ETag: profiles answers 304 while no city changed (one cheap call,
    made as this user, so a signed-out user is refused as on any page), and only a change fetches them all again.
    """
    kept: MapData | None = getattr(page.request.app.state, "map_data", None)
    headers = {"If-None-Match": kept.source_tag} if kept and kept.source_tag else {}
    first = await api(page, "GET", POINTS, params={"limit": POINTS_PAGE, "offset": 0}, headers=headers)
    if first.status_code == 304 and kept:
        return kept
    if first.status_code != 200:
        raise MapUnavailable(first)
    tag, found = first.headers.get("etag"), first.json()
    items = list(found["items"])
    for offset in range(POINTS_PAGE, found["total"], POINTS_PAGE):
        response = await api(page, "GET", POINTS, params={"limit": POINTS_PAGE, "offset": offset})
        if response.status_code != 200:
            raise MapUnavailable(response)
        if response.headers.get("etag") != tag:
            tag = None  # a city changed between pages: this copy is sent, never revalidated
        items += response.json()["items"]
    data = await asyncio.to_thread(compact, items, tag)
    page.request.app.state.map_data = data
    return data


@router.get("/map/cities.json")
async def cities_json(page: UserPage, request: Request):
    """Every published city for map.js; the browser revalidates its copy (ETag) and gets it gzipped."""
    try:
        data = await map_data(page)
    except MapUnavailable as exc:
        return JSONResponse(
            {"detail": page.gettext("The cities could not be loaded. Reload the page, or use the list.")},
            status_code=exc.response.status_code,
        )
    headers = {"ETag": data.etag, "Cache-Control": "private, no-cache", "Vary": "Accept-Encoding, Cookie"}
    if request.headers.get("if-none-match") == data.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(data.gzipped, media_type="application/json", headers={**headers, "Content-Encoding": "gzip"})
    return Response(data.body, media_type="application/json", headers=headers)


@router.get("/map/list", response_class=HTMLResponse)
async def map_list(page: UserPage, request: Request, offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0):
    """The map's cities as a table: the same filters, asked of profiles' directory, a page at a time."""
    filters, errors = map_filters(request.query_params)
    params = {**filters.directory_params(), "limit": LIST_PAGE, "offset": offset, "sort": "name"}
    response = await api(page, "GET", "/api/v1/cities", params=params)
    if response.status_code == 422:
        errors |= forms.field_errors(response, page.lang)
    if response.status_code not in (200, 422):
        return failure(page, response)
    result = response.json() if response.status_code == 200 else {"items": [], "total": 0}
    return page.render(
        "map_list.html",
        status_code=422 if errors else 200,
        filters=filters,
        query=filters.query(),
        theme_ids=THEME_IDS,
        result=result,
        offset=offset,
        page_size=LIST_PAGE,
        errors=errors,
    )
