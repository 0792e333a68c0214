"""The pilot-zone pages: the board and its exports, drafting, editing, the proposal with its reviews and delivery.

What a user may do to a proposal (its transitions, the fields they may edit, the cities they may confirm) is the
API's answer for that user; the pages offer that and nothing else.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from citypair_shared.themes import THEME_IDS
from citypair_shared.vocabulary import Status
from citypair_web import forms
from citypair_web import proposal_forms as pforms
from citypair_web.pages import Page, redirect
from citypair_web.router import FormPage, UserPage, act, api, failure

router = APIRouter(include_in_schema=False)
FILTERS = ("status", "theme", "city_id", "overdue")
REVIEWERS = {"coordinator", "admin"}
PRIVATE_NOTES = "coordinator"  # who writes and reads private reviewer notes (the API's rule)
MAX_MEMBERS = 8
PAGE = 100  # the API's largest page


def _filters(request: Request) -> dict:
    return {k: v for k, v in request.query_params.items() if k in FILTERS and v}


@router.get("/pilot-zones", response_class=HTMLResponse)
async def board(page: UserPage, request: Request):
    filters = _filters(request)
    response = await api(page, "GET", "/api/v1/pilot-zones", params={**filters, "limit": PAGE})
    if response.status_code == 422:
        return page.render("board.html", status_code=422, **_board(page, filters, {"items": [], "total": 0}, response))
    if response.status_code != 200:
        return failure(page, response)
    return page.render("board.html", **_board(page, filters, response.json()))


def _board(page: Page, filters: dict, found: dict, problem=None) -> dict:
    columns: dict[str, list] = {}
    for proposal in found["items"]:
        columns.setdefault(proposal["status"], []).append(proposal)
    shown = [filters["status"]] if filters.get("status") in tuple(Status) else tuple(Status)
    return {
        "statuses": shown,
        "all_statuses": tuple(Status),
        "columns": columns,
        "total": found["total"],
        "query": filters,
        "theme_ids": THEME_IDS,
        "errors": pforms.field_errors(problem, page.lang) if problem is not None else {},
        "may_draft": "official" in page.session.roles,
    }


@router.get("/pilot-zones/export.{fmt}")
async def export(page: UserPage, request: Request, fmt: Literal["csv", "json", "xlsx"]):
    """The API's export, filtered like the board, passed on as a download."""
    response = await api(page, "GET", "/api/v1/pilot-zones/export", params={**_filters(request), "format": fmt})
    if response.status_code != 200:
        return failure(page, response)
    return Response(
        response.content,
        media_type=response.headers["content-type"],
        headers={"Content-Disposition": f'attachment; filename="pilot-zones.{fmt}"'},
    )


# --------------------------------------------------------------------------- drafting


@router.get("/pilot-zones/new", response_class=HTMLResponse)
async def draft_form(page: UserPage, request: Request):
    query = request.query_params
    values = pforms.submitted_form(query)
    if not values["city_ids"]:
        values["city_ids"] = page.session.city_ids[:1]
    return await _draft_page(page, values, find=(query.get("find") or "").strip())


@router.post("/pilot-zones/new", response_class=HTMLResponse)
async def draft_save(page: FormPage, request: Request):
    values = pforms.submitted_form(await request.form())
    response = await api(page, "POST", "/api/v1/pilot-zones", json=pforms.draft_body(values))
    if response.status_code == 201:
        return redirect(f"/pilot-zones/{response.json()['id']}?saved=1")
    if response.status_code in (403, 409, 422):
        return await _draft_page(page, values, status_code=response.status_code, problem=response)
    return failure(page, response)


async def _draft_page(page: Page, values: dict, *, find: str = "", status_code: int = 200, problem=None):
    return page.render(
        "proposal_form.html",
        status_code=status_code,
        proposal=None,
        form=values,
        cities=await _city_names(page, values["city_ids"]),
        found=await _found(page, find, values["city_ids"]),
        find=find,
        kept=pforms.kept(values),
        action="/pilot-zones/new",
        max_members=MAX_MEMBERS,
        **_problem(page, problem),
    )


def _problem(page: Page, response) -> dict:
    """A refused save as the form shows it: each wrong field beside its input, the rest above the form."""
    if response is None:
        return {"errors": {}, "message": None}
    body = response.json() if "json" in response.headers.get("content-type", "") else {}
    errors = pforms.field_errors(response, page.lang)
    if response.status_code == 409 and body.get("existing_id"):
        return {
            "errors": errors,
            "message": page.gettext("An open proposal for these cities exists already."),
            "existing_id": body["existing_id"],
        }
    message = (
        page.gettext("Please fix the fields marked below.")
        if errors
        else forms.problem_message(body, page.lang)
        or body.get("detail")
        or page.gettext("Something went wrong. Please try again.")
    )
    return {"errors": errors, "message": message}


async def _found(page: Page, find: str, members: list[str]) -> list[dict]:
    """The cities whose name matches `find` (a member city search), but those already members."""
    if not find.strip():
        return []
    response = await api(page, "GET", "/api/v1/cities", params={"q": find.strip(), "limit": 10})
    found = response.json()["items"] if response.status_code == 200 else []
    return [c for c in found if c["id"] not in members]


async def _city_names(page: Page, city_ids: list[str]) -> dict[str, str]:
    names = {}
    for city_id in city_ids[:MAX_MEMBERS]:
        response = await api(page, "GET", f"/api/v1/cities/{city_id}")
        names[city_id] = response.json()["name"] if response.status_code == 200 else city_id
    return names


# --------------------------------------------------------------------------- editing


@router.get("/pilot-zones/{proposal_id}/edit", response_class=HTMLResponse)
async def edit_form(page: UserPage, request: Request, proposal_id: str):
    response = await api(page, "GET", f"/api/v1/pilot-zones/{proposal_id}")
    if response.status_code != 200:
        return failure(page, response)
    proposal = response.json()
    if "title" not in proposal["editable"]:
        return page.render(
            "error.html",
            status_code=409,
            message=page.gettext("This proposal cannot be edited now, or not by you."),
            detail="",
        )
    values = pforms.content_form(proposal)
    query = request.query_params
    if query.getlist("city_ids"):  # a member added or removed through the search (a GET, like the draft's)
        values["city_ids"] = list(dict.fromkeys(query.getlist("city_ids")))
    return await _edit_page(page, proposal, values, version=proposal["version"], find=query.get("find") or "")


@router.post("/pilot-zones/{proposal_id}/edit", response_class=HTMLResponse)
async def edit_save(page: FormPage, request: Request, proposal_id: str):
    form = await request.form()
    values, version = pforms.submitted_form(form), form.get("version", "")
    body = pforms.content_body(values)
    response = await api(
        page, "PATCH", f"/api/v1/pilot-zones/{proposal_id}", json=body, headers={"If-Match": f'"{version}"'}
    )
    if response.status_code == 200:
        return redirect(f"/pilot-zones/{proposal_id}?saved=1")
    current = await api(page, "GET", f"/api/v1/pilot-zones/{proposal_id}")
    if current.status_code != 200:
        return failure(page, current)
    proposal = current.json()
    if response.status_code == 412:
        # Shown beside each other: what is there now and what this user wrote; saving again applies the latter.
        conflict = pforms.changed(body, proposal)
        return await _edit_page(page, proposal, values, version=proposal["version"], status_code=412, conflict=conflict)
    if response.status_code in (403, 409, 422):
        return await _edit_page(
            page, proposal, values, version=version, status_code=response.status_code, problem=response
        )
    return failure(page, response)


async def _edit_page(
    page: Page, proposal: dict, values: dict, *, version, find: str = "", status_code: int = 200, **extra
):
    names = {m["city_id"]: m["name"] or m["city_id"] for m in proposal["members"]}
    missing = [c for c in values["city_ids"] if c not in names]
    return page.render(
        "proposal_form.html",
        status_code=status_code,
        proposal={**proposal, "version": version},
        form=values,
        cities={**names, **await _city_names(page, missing)},
        found=await _found(page, find, values["city_ids"]),
        find=find,
        kept=[("city_ids", c) for c in values["city_ids"]],
        action=f"/pilot-zones/{proposal['id']}/edit",
        max_members=MAX_MEMBERS,
        conflict=extra.get("conflict"),
        **_problem(page, extra.get("problem")),
    )


# --------------------------------------------------------------------------- the proposal


@router.get("/pilot-zones/{proposal_id}", response_class=HTMLResponse)
async def proposal(page: UserPage, proposal_id: str):
    response = await api(page, "GET", f"/api/v1/pilot-zones/{proposal_id}")
    if response.status_code != 200:
        return failure(page, response)
    return await _proposal_page(page, response.json())


async def _proposal_page(
    page: Page, proposal: dict, *, status_code: int = 200, tracking: dict | None = None, refused: str = ""
):
    """The proposal page; `tracking` holds a refused tracking save: its section, its rows as typed and why."""
    pid = proposal["id"]
    comments = await _latest(page, f"/api/v1/pilot-zones/{pid}/comments")
    timeline = await _latest(page, f"/api/v1/pilot-zones/{pid}/timeline")
    reviewer = bool(page.session.roles & REVIEWERS)
    coordinators = await _coordinators(page) if reviewer else {}
    rows = {section: pforms.tracking_rows(section, proposal[section]) for section in pforms.TRACKING}
    if tracking:
        rows[tracking["section"]] = tracking["rows"]
    return page.render(
        "proposal.html",
        status_code=status_code,
        proposal=proposal,
        comments=_threads(comments["items"]),
        timeline=timeline["items"],
        earlier={
            "comments": comments["total"] - len(comments["items"]),
            "timeline": timeline["total"] - len(timeline["items"]),
        },
        names={m["city_id"]: m["name"] or m["city_id"] for m in proposal["members"]},
        may_assign=reviewer,
        coordinators=coordinators,
        may_note_privately=PRIVATE_NOTES in page.session.roles,
        may_comment=PRIVATE_NOTES in page.session.roles or _member(page, proposal),
        rows=rows,
        tracking=tracking or {},
        refused=refused,
        who=lambda user_id: _who(page, coordinators, user_id),
        field_label=lambda key: page.term("proposal_field", key),
    )


def _who(page: Page, known: dict[str, str], user_id: str) -> str:
    """A user as the page names them: you, a coordinator's email when this user may list them, else a short id."""
    if user_id == page.session.user.get("id"):
        return page.gettext("you")
    return known.get(user_id) or user_id[:8]


async def _latest(page: Page, path: str) -> dict:
    """The newest page (the API's lists run oldest first): {"items": [...], "total": n}; empty if refused."""
    response = await api(page, "GET", path, params={"limit": PAGE})
    if response.status_code != 200:
        return {"items": [], "total": 0}
    found = response.json()
    if found["total"] > PAGE:
        response = await api(page, "GET", path, params={"limit": PAGE, "offset": found["total"] - PAGE})
        found = response.json() if response.status_code == 200 else found
    return found


def _member(page: Page, proposal: dict) -> bool:
    return "official" in page.session.roles and bool(set(proposal["city_ids"]) & set(page.session.city_ids))


async def _coordinators(page: Page) -> dict[str, str]:
    """{user id: email} of the coordinators, for those allowed to list users (else none: assign by id)."""
    response = await api(page, "GET", "/api/v1/users", params={"role": "coordinator", "limit": PAGE})
    return {u["id"]: u["email"] for u in response.json()["items"]} if response.status_code == 200 else {}


def _threads(comments: list[dict]) -> list[dict]:
    """Comments in reading order, each reply under the one it answers, with its depth (the API gives them oldest
    first with a `parent_id`)."""
    children: dict[str | None, list[dict]] = {}
    known = {c["id"] for c in comments}
    for c in comments:
        children.setdefault(c["parent_id"] if c["parent_id"] in known else None, []).append(c)
    ordered: list[dict] = []

    def walk(parent: str | None, depth: int) -> None:
        for c in children.get(parent, []):
            ordered.append({**c, "depth": depth})
            walk(c["id"], depth + 1)

    walk(None, 0)
    return ordered


@router.post("/pilot-zones/{proposal_id}/transition", response_class=HTMLResponse)
async def move(page: FormPage, proposal_id: str, to: Annotated[str, Form()], comment: Annotated[str, Form()] = ""):
    path = f"/api/v1/pilot-zones/{proposal_id}"
    response = await api(page, "POST", f"{path}/transitions", json={"to": to, "comment": comment})
    if response.status_code < 400:
        return redirect(f"/pilot-zones/{proposal_id}")
    current = await api(page, "GET", path)
    if response.status_code not in (403, 409, 422) or current.status_code != 200:
        return failure(page, response)
    # Refused (e.g. a member city has not confirmed yet): the proposal again, with the reason by its buttons.
    proposal = current.json()
    unconfirmed = response.json().get("unconfirmed")
    if unconfirmed:
        names = {m["city_id"]: m["name"] or m["city_id"] for m in proposal["members"]}
        refused = page.gettext(
            "Not yet: every member city confirms first. Waiting for %(cities)s.",
            cities=", ".join(names.get(c, c) for c in unconfirmed),
        )
    else:
        refused = _problem(page, response)["message"]
    return await _proposal_page(page, proposal, status_code=response.status_code, refused=refused)


@router.post("/pilot-zones/{proposal_id}/members/{city_id}/confirm", response_class=HTMLResponse)
async def confirm_membership(page: FormPage, proposal_id: str, city_id: str):
    return await act(
        page, "POST", f"/api/v1/pilot-zones/{proposal_id}/members/{city_id}/confirm", then=f"/pilot-zones/{proposal_id}"
    )


@router.post("/pilot-zones/{proposal_id}/comments", response_class=HTMLResponse)
async def add_comment(
    page: FormPage,
    proposal_id: str,
    body: Annotated[str, Form()] = "",
    parent_id: Annotated[str, Form()] = "",
    private: Annotated[bool, Form()] = False,
):
    payload = {"body": body, "parent_id": parent_id or None, "private": private}
    return await act(
        page,
        "POST",
        f"/api/v1/pilot-zones/{proposal_id}/comments",
        then=f"/pilot-zones/{proposal_id}#comments",
        json=payload,
    )


@router.post("/pilot-zones/{proposal_id}/assign", response_class=HTMLResponse)
async def assign(page: FormPage, proposal_id: str, coordinator_id: Annotated[str, Form()] = ""):
    return await act(
        page,
        "POST",
        f"/api/v1/pilot-zones/{proposal_id}/assign",
        then=f"/pilot-zones/{proposal_id}",
        json={"coordinator_id": coordinator_id or None},
    )


@router.post("/pilot-zones/{proposal_id}/tracking/{section}", response_class=HTMLResponse)
async def track(
    page: FormPage, request: Request, proposal_id: str, section: Literal["milestones", "kpis", "documents"]
):
    """Save one delivery-tracking section (milestones, KPIs or documents) against the version it was read at."""
    form = await request.form()
    response = await api(
        page,
        "PATCH",
        f"/api/v1/pilot-zones/{proposal_id}",
        json={section: pforms.tracking_body(section, form)},
        headers={"If-Match": f'"{form.get("version", "")}"'},
    )
    if response.status_code == 200:
        return redirect(f"/pilot-zones/{proposal_id}?saved=1#{section}")
    if response.status_code not in (409, 412, 422):
        return failure(page, response)
    current = await api(page, "GET", f"/api/v1/pilot-zones/{proposal_id}")
    if current.status_code != 200:
        return failure(page, current)
    proposal = current.json()
    tracking = {"section": section, "rows": pforms.tracking_rows_posted(section, form)}
    if response.status_code == 412:
        # The rows stay as this user typed them, against the current version; what is there now is shown beside.
        tracking |= {"conflict": True, "current": proposal[section]}
    else:
        tracking |= _problem(page, response)
        proposal = {**proposal, "version": form.get("version", "")}
    return await _proposal_page(page, proposal, status_code=response.status_code, tracking=tracking)
