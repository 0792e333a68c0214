"""The pages. Each calls the API as the signed-in user; the services decide what is allowed."""

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated

from babel.dates import format_timedelta
from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import HTMLResponse

from citypair_shared.themes import THEME_IDS
from citypair_shared.vocabulary import AcceptReason, DeclineReason
from citypair_web import forms, i18n
from citypair_web.graphics import network_layout
from citypair_web.pages import Page, csrf_ok, page_for, redirect, start_session
from citypair_web.sessions import COOKIE, SignedOut

router = APIRouter(include_in_schema=False)
PageDep = Annotated[Page, Depends(page_for)]


class NotSignedIn(Exception):
    """No session (or it ended): the page sends the user to sign in."""


class BadCsrf(Exception):
    """A form came without this session's CSRF token."""


async def user_page(request: Request) -> Page:
    """The page of a signed-in user (or NotSignedIn, which leads to the sign-in form)."""
    page = await page_for(request)
    if page.session is None:
        raise NotSignedIn()
    return page


async def form_page(request: Request) -> Page:
    """A signed-in user's form post that carries the session's CSRF token (or BadCsrf)."""
    page = await user_page(request)
    if not csrf_ok(page, (await request.form()).get("csrf")):
        raise BadCsrf()
    return page


UserPage = Annotated[Page, Depends(user_page)]
FormPage = Annotated[Page, Depends(form_page)]


async def api(page: Page, method: str, path: str, **kwargs):
    try:
        return await page.request.app.state.api.call(page.session, method, path, **kwargs)
    except SignedOut as exc:
        await page.request.app.state.sessions.drop(page.request.cookies.get(COOKIE))
        raise NotSignedIn() from exc


async def act(page: Page, method: str, path: str, *, then: str, **kwargs):
    """Do one thing through the API: on success go on to `then`, else show why not."""
    response = await api(page, method, path, **kwargs)
    return failure(page, response) if response.status_code >= 400 else redirect(then)


def failure(page: Page, response) -> HTMLResponse:
    if response.status_code == 403:
        message = page.gettext("You are not allowed to do this.")
    elif response.status_code == 404:
        message = page.gettext("Not found.")
    else:
        message = page.gettext("Something went wrong. Please try again.")
    body = response.json() if "json" in response.headers.get("content-type", "") else {}
    # a known problem type in the page's language; else the API's English words, marked so by the template
    said = forms.problem_message(body, page.lang)
    detail = said or body.get("detail", "")
    return page.render(
        "error.html", status_code=response.status_code, message=message, detail=detail, english=said is None
    )


@router.get("/", response_class=HTMLResponse)
async def home(page: PageDep):
    if page.session is None:
        return page.render("signin.html")
    return await dashboard(page)


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(
    page: PageDep, email: Annotated[str, Form()], password: Annotated[str, Form()], csrf: Annotated[str, Form()] = ""
):
    if not csrf_ok(page, csrf):
        return page.render(
            "signin.html", status_code=400, error=page.gettext("Something went wrong. Please try again.")
        )
    client = page.request.client.host if page.request.client else "unknown"
    response = await page.request.app.state.api.sign_in(email, password, client)
    if response.status_code == 429:
        seconds = response.headers.get("retry-after", "60")
        return page.render(
            "signin.html",
            status_code=429,
            error=page.gettext("Too many attempts. Try again in %(seconds)s s.", seconds=seconds),
            email=email,
        )
    if response.status_code != 200:
        return page.render("signin.html", status_code=401, error=page.gettext("Wrong email or password."), email=email)
    tokens = response.json()
    user = await page.request.app.state.api.me(tokens["access_token"])
    return await start_session(page, tokens, user)


@router.post("/sign-out")
async def sign_out(page: PageDep, csrf: Annotated[str, Form()] = ""):
    done = redirect("/")
    if page.session and csrf_ok(page, csrf):  # a forged post must not sign anyone out
        await page.request.app.state.api.logout(page.session)
        await page.request.app.state.sessions.drop(page.request.cookies.get(COOKIE))
        done.delete_cookie(COOKIE)
    return done


async def dashboard(page: Page):
    my_cities, suggestions = [], []
    for city_id in page.session.city_ids[:5]:
        response = await api(page, "GET", f"/api/v1/cities/{city_id}")
        if response.status_code == 200:
            my_cities.append({**response.json(), "completeness": forms.completeness(response.json())})
    if my_cities:
        response = await api(page, "GET", f"/api/v1/cities/{my_cities[0]['id']}/partners", params={"k": 5})
        suggestions = response.json().get("items", []) if response.status_code == 200 else []
    zones = await api(page, "GET", "/api/v1/pilot-zones", params={"limit": 100})
    proposals = zones.json().get("items", []) if zones.status_code == 200 else []
    todo = [p for p in proposals if p.get("allowed_transitions")]
    return page.render(
        "dashboard.html",
        my_cities=my_cities,
        suggestions=suggestions,
        todo=todo,
        notifications=await _notifications(page),
    )


async def _notifications(page: Page) -> list[dict]:
    response = await api(page, "GET", "/api/v1/me/notifications", params={"limit": 10})
    return response.json().get("items", []) if response.status_code == 200 else []


@router.get("/notifications.json")
async def notifications_feed(page: UserPage):
    """The dashboard's live list (polled by static/app.js)."""
    return {
        "items": [
            {
                "title": i18n.notification(n, page.lang),
                "link": n["link"],
                "unread": n["read_at"] is None,
                "when": i18n.date(n["created_at"], page.lang),
            }
            for n in await _notifications(page)
        ]
    }


@router.get("/cities", response_class=HTMLResponse)
async def directory(page: UserPage, request: Request):
    params = forms.directory_params(request.query_params)
    response = await api(page, "GET", "/api/v1/cities", params=params)
    if response.status_code == 422:
        return page.render(
            "directory.html",
            status_code=422,
            result={"items": [], "total": 0, "limit": 20, "offset": 0},
            errors=forms.field_errors(response, page.lang),
            query=dict(request.query_params),
            theme_ids=THEME_IDS,
        )
    if response.status_code != 200:
        return failure(page, response)
    return page.render(
        "directory.html", result=response.json(), errors={}, query=dict(request.query_params), theme_ids=THEME_IDS
    )


@router.get("/cities/{city_id}/edit", response_class=HTMLResponse)
async def edit_form(page: UserPage, city_id: str):
    response = await api(page, "GET", f"/api/v1/cities/{city_id}")
    if response.status_code != 200:
        return failure(page, response)
    return page.render("edit.html", city=response.json(), form=forms.profile_form(response.json()), errors={})


@router.post("/cities/{city_id}/edit", response_class=HTMLResponse)
async def edit_save(page: FormPage, city_id: str, request: Request):
    form = await request.form()
    body, version = forms.profile_body(form), form.get("version", "")
    response = await api(page, "PATCH", f"/api/v1/cities/{city_id}", json=body, headers={"If-Match": f'"{version}"'})
    if response.status_code == 200:
        return redirect(f"/cities/{city_id}?saved=1")
    current = await api(page, "GET", f"/api/v1/cities/{city_id}")
    if response.status_code == 412:
        return page.render(
            "edit.html",
            status_code=412,
            city=current.json(),
            form=forms.profile_form(current.json()),
            errors={},
            conflict=page.gettext(
                "Someone changed this profile while you were editing (now version %(version)s). "
                "Your changes were not saved: reload, then make them again.",
                version=current.json()["version"],
            ),
        )
    if response.status_code == 422:
        return page.render(
            "edit.html",
            status_code=422,
            city={**current.json(), "version": version},
            form=dict(form),
            errors=forms.field_errors(response, page.lang),
            message=page.gettext("Please fix the fields marked below."),
        )
    return failure(page, response)


@router.get("/cities/{city_id}/partners", response_class=HTMLResponse)
async def partners(page: UserPage, city_id: str):
    city_response = await api(page, "GET", f"/api/v1/cities/{city_id}")
    if city_response.status_code != 200:
        return failure(page, city_response)
    response = await api(page, "GET", f"/api/v1/cities/{city_id}/partners", params={"k": 20})
    items = response.json().get("items", []) if response.status_code == 200 else []
    may_decide = "official" in page.session.roles and city_id in page.session.city_ids
    return page.render(
        "partners.html",
        city=city_response.json(),
        items=items,
        may_decide=may_decide,
        reasons=tuple(DeclineReason),
        top=max([i.get("score", 0) for i in items] or [1]),
    )


@router.post("/cities/{city_id}/partners/{other_id}/decision", response_class=HTMLResponse)
async def decide(
    page: FormPage,
    city_id: str,
    other_id: str,
    decision: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
):
    # The page asks a reason only of a decline; an accept from it says what the suggestion was built on.
    reason = reason if decision == "decline" else AcceptReason.complementary_themes
    body = {"decision": decision, "reason": reason, "text": text}
    return await act(
        page,
        "POST",
        f"/api/v1/matches/{city_id}/{other_id}/decision",
        then=f"/pairs/{city_id}/{other_id}?decided=1",
        json=body,
    )


@router.get("/pairs/{a}/{b}", response_class=HTMLResponse)
async def pair(page: UserPage, a: str, b: str):
    response = await api(page, "GET", f"/api/v1/matches/{a}/{b}")
    if response.status_code != 200:
        return failure(page, response)
    cities = [await api(page, "GET", f"/api/v1/cities/{city_id}") for city_id in (a, b)]
    names = {c.json()["id"]: c.json()["name"] for c in cities if c.status_code == 200}
    check_detail = partial(i18n.check_detail, lang=page.lang)
    return page.render("pair.html", pair=response.json(), a=a, b=b, names=names, check_detail=check_detail)


@router.get("/cities/{city_id}/network", response_class=HTMLResponse)
async def network(page: UserPage, city_id: str):
    center = await api(page, "GET", f"/api/v1/cities/{city_id}")
    if center.status_code != 200:
        return failure(page, center)
    names = {city_id: center.json()["name"]}
    edges = [(city_id, p) for p in center.json()["partner_ids"]]
    for partner_id in center.json()["partner_ids"][:25]:
        partner = await api(page, "GET", f"/api/v1/cities/{partner_id}")
        if partner.status_code == 200:
            names[partner_id] = partner.json()["name"]
            edges += [(partner_id, q) for q in partner.json()["partner_ids"][:8]]
    positions = network_layout(city_id, edges)
    return page.render(
        "network.html", city=center.json(), positions=positions, edges=edges, names=names, center_id=city_id
    )


@router.get("/clusters", response_class=HTMLResponse)
async def clusters(page: UserPage, request: Request):
    params = {k: v for k, v in request.query_params.items() if k in ("theme", "size") and v}
    response = await api(page, "GET", "/api/v1/clusters", params=params)
    if response.status_code >= 400:
        return failure(page, response)
    found = response.json()
    found_ago = None
    if found["stale"]:  # matching answered at once with the clusters found before its index changed; new ones follow
        # Said as how long ago (at least a second, whatever the clocks say): web does not know the viewer's time zone.
        since = datetime.fromisoformat(found["computed_at"]) - datetime.now(UTC)
        found_ago = format_timedelta(min(since, -timedelta(seconds=1)), add_direction=True, locale=page.lang)
    # The size shown is the one matching used (its default when none was asked), never a default of web's own.
    return page.render(
        "clusters.html",
        clusters=found["items"],
        size=found["size"],
        query=params,
        theme_ids=THEME_IDS,
        found_ago=found_ago,
    )


@router.get("/import", response_class=HTMLResponse)
async def import_form(page: UserPage):
    return page.render("import.html", report=None)


@router.post("/import", response_class=HTMLResponse)
async def import_upload(page: FormPage, file: UploadFile, all_or_nothing: Annotated[bool, Form()] = False):
    content = await file.read()
    response = await api(
        page,
        "POST",
        "/api/v1/cities/import",
        content=content,
        headers={"Content-Type": forms.import_media(file.filename or "", content)},
        params={"all_or_nothing": all_or_nothing},
    )
    if response.status_code >= 400 and response.status_code != 422:
        return failure(page, response)
    report = response.json()
    return page.render(
        "import.html",
        report=report,
        problem=forms.problem_message(report, page.lang),
        # a row's error, or a file refused whole's reason, in the page's language (not the API's English `detail`)
        said=partial(forms.error_message, lang=page.lang),
        status_code=response.status_code,
    )
