"""The pages of cities and matching: a city (new, verify, publish, retire, history), programme rounds (run, review,
publish), and the public open-data pages. The services decide what is allowed; the pages offer what may be."""

import functools
from typing import Annotated, get_args
from urllib.parse import urlencode

import pycountry
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse

from citypair_shared.vocabulary import CityStatus
from citypair_web import forms, i18n
from citypair_web.pages import Page, page_for, redirect
from citypair_web.router import FormPage, UserPage, act, api, failure

router = APIRouter(include_in_schema=False)
PublicPage = Annotated[Page, Depends(page_for)]
PAGE_SIZE = 20
ROUND_ROWS = 100  # pairs and unmatched cities of a round shown per page
DRAFT, _, RETIRED = get_args(CityStatus)
# The changes of a profile's state a button offers (profiles' own names for them; its API refuses what may not be).
STATUS_ACTIONS = ("verify", "publish", "retire")


@functools.cache
def countries(lang: str) -> tuple[tuple[str, str], ...]:
    """(ISO 3166-1 alpha-2, name in `lang` from CLDR) of every country, by name."""
    named = ((c.alpha_2, i18n.country(c.alpha_2, lang)) for c in pycountry.countries)
    return tuple(sorted(named, key=lambda pair: pair[1]))


def programme(page: Page) -> bool:
    """A coordinator or an admin: who runs the programme (cities' states, rounds)."""
    return bool(page.session.roles & {"admin", "coordinator"})


def field_label(page: Page):
    """A profile field's name on the pages (the API's own name for a field the pages do not name)."""

    def label(key: str) -> str:
        return page.term("profile_field", key)

    return label


def status_actions(city: dict, page: Page) -> list[str]:
    """The state changes this user is offered for the city: coordinators' and admins' only, as profiles rules."""
    if not programme(page) or city["status"] == RETIRED:
        return []
    offered = {"verify": not city["verified"], "publish": city["status"] == DRAFT, "retire": True}
    return [action for action in STATUS_ACTIONS if offered[action]]


# ---------------------------------------------------------------------- cities


@router.get("/cities/new", response_class=HTMLResponse)
async def new_city_form(page: UserPage):
    return page.render("city_new.html", form={"capacity": "5"}, errors={}, countries=countries(page.lang))


@router.post("/cities/new", response_class=HTMLResponse)
async def create_city(page: FormPage, request: Request):
    form = await request.form()
    body = {**forms.profile_body(form), "country_code": form.get("country_code", ""), "draft": bool(form.get("draft"))}
    response = await api(page, "POST", "/api/v1/cities", json=body)
    if response.status_code == 201:
        return redirect(f"/cities/{response.json()['id']}?saved=1")
    if response.status_code != 422:
        return failure(page, response)
    return page.render(
        "city_new.html",
        status_code=422,
        form={**dict(form), "corridors": form.getlist("corridors")},
        errors=forms.field_errors(response, page.lang),
        message=page.gettext("Please fix the fields marked below."),
        countries=countries(page.lang),
    )


@router.get("/cities/{city_id}", response_class=HTMLResponse)
async def city(page: UserPage, city_id: str):
    response = await api(page, "GET", f"/api/v1/cities/{city_id}")
    if response.status_code != 200:
        return failure(page, response)
    profile = response.json()
    can_edit = programme(page) or ("official" in page.session.roles and city_id in page.session.city_ids)
    return page.render("city.html", city=profile, can_edit=can_edit, actions=status_actions(profile, page))


@router.post("/cities/{city_id}/status", response_class=HTMLResponse)
async def change_city_status(
    page: FormPage, city_id: str, action: Annotated[str, Form()], version: Annotated[str, Form()]
):
    if action not in STATUS_ACTIONS:
        return page.render(
            "error.html",
            status_code=400,
            message=page.gettext("Something went wrong. Please try again."),
            detail=action,
        )
    # If-Match: a button pressed on a page someone else's change made stale is refused (412), not applied.
    return await act(
        page,
        "POST",
        f"/api/v1/cities/{city_id}/{action}",
        then=f"/cities/{city_id}?saved=1",
        headers={"If-Match": f'"{version}"'},
    )


@router.get("/cities/{city_id}/history", response_class=HTMLResponse)
async def city_history(page: UserPage, city_id: str, offset: int = 0):
    city_response = await api(page, "GET", f"/api/v1/cities/{city_id}")
    if city_response.status_code != 200:
        return failure(page, city_response)
    response = await api(
        page, "GET", f"/api/v1/cities/{city_id}/history", params={"limit": PAGE_SIZE, "offset": max(offset, 0)}
    )
    if response.status_code != 200:
        return failure(page, response)
    return page.render("history.html", city=city_response.json(), result=response.json(), label=field_label(page))


# ---------------------------------------------------------------------- programme rounds


def _rounds_page(page: Page, rounds: dict, *, status_code: int = 200, form=None, errors=None) -> HTMLResponse:
    return page.render(
        "rounds.html",
        status_code=status_code,
        rounds=rounds,
        may_run=programme(page),
        countries=countries(page.lang),
        form=form or {"capacity": "1", "min_score": "0.3", "countries": [], "corridors": []},
        errors=errors or {},
    )


async def _past_rounds(page: Page, offset: int) -> dict:
    response = await api(page, "GET", "/api/v1/rounds", params={"limit": PAGE_SIZE, "offset": max(offset, 0)})
    empty = {"items": [], "total": 0, "limit": PAGE_SIZE, "offset": 0}
    return response.json() if response.status_code == 200 else empty


@router.get("/rounds", response_class=HTMLResponse)
async def rounds(page: UserPage, offset: int = 0):
    return _rounds_page(page, await _past_rounds(page, offset))


@router.post("/rounds", response_class=HTMLResponse)
async def run_round(page: FormPage, request: Request):
    form = await request.form()
    response = await api(page, "POST", "/api/v1/rounds", json=forms.round_body(form))
    if response.status_code == 201:
        return redirect(f"/rounds/{response.json()['id']}")
    if response.status_code != 422:
        return failure(page, response)
    asked = {**dict(form), "countries": form.getlist("countries"), "corridors": form.getlist("corridors")}
    errors = forms.field_errors(response, page.lang)
    return _rounds_page(page, await _past_rounds(page, 0), status_code=422, form=asked, errors=errors)


@router.get("/rounds/{round_id}", response_class=HTMLResponse)
async def round_review(page: UserPage, round_id: str, offset: int = 0):
    response = await api(page, "GET", f"/api/v1/rounds/{round_id}")
    if response.status_code != 200:
        return failure(page, response)
    found = response.json()
    offset = max(offset, 0)
    names = dict(countries(page.lang))
    return page.render(
        "round.html",
        round=found,
        pairs=found["pairs"][offset : offset + ROUND_ROWS],
        unmatched=found["unmatched"][offset : offset + ROUND_ROWS],
        offset=offset,
        rows=ROUND_ROWS,
        more=offset + ROUND_ROWS < max(len(found["pairs"]), len(found["unmatched"])),
        may_publish=programme(page) and found["published_at"] is None,
        country_names=[names.get(code, code) for code in found["request"]["cities"]["countries"]],
    )


@router.post("/rounds/{round_id}/publish", response_class=HTMLResponse)
async def publish_round(page: FormPage, round_id: str):
    return await act(page, "POST", f"/api/v1/rounds/{round_id}/publish", then=f"/rounds/{round_id}?published=1")


# ---------------------------------------------------------------------- open data (no sign-in)


async def public_api(page: Page, path: str, params: dict):
    """A call to an open-data API, as no one: these pages show only what anyone may read."""
    return await page.request.app.state.api.client.get(path, params=params)


@router.get("/open-data/pilot-zones", response_class=HTMLResponse)
async def open_pilot_zones(page: PublicPage, offset: int = 0):
    params = {"limit": PAGE_SIZE, "offset": max(offset, 0)}
    response = await public_api(page, "/api/v1/open-data/pilot-zones", params)
    if response.status_code != 200:
        return failure(page, response)
    return page.render("public_pilot_zones.html", result=response.json())


@router.get("/open-data/cities", response_class=HTMLResponse)
async def open_cities(page: PublicPage, request: Request):
    query = {k: v.strip() for k, v in request.query_params.items() if k in ("q", "country", "offset") and v.strip()}
    response = await public_api(page, "/api/v1/open-data/cities", {**query, "limit": PAGE_SIZE})
    result, errors, status_code = {"items": [], "total": 0, "limit": PAGE_SIZE, "offset": 0}, {}, 200
    if response.status_code == 422:
        errors, status_code = forms.field_errors(response, page.lang), 422
    elif response.status_code != 200:
        return failure(page, response)
    else:
        result = response.json()
    return page.render(
        "public_cities.html",
        status_code=status_code,
        result=result,
        errors=errors,
        query=query,
        countries=countries(page.lang),
        label=field_label(page),
        page_link=lambda offset: "?" + urlencode({**query, "offset": offset}),
    )
