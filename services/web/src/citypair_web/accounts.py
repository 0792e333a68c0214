"""Accounts in the pages: My account, the user list, the pages the mails link to (invitation, password reset,
unsubscribe) and the development mail page. Identity's API decides who may do what; the pages only leave out
the buttons that would be refused."""

import asyncio
import re
from email import message_from_bytes, policy
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from citypair_web import city_picker, forms, i18n
from citypair_web.pages import Page, csrf_ok, redirect, remember_language, start_session
from citypair_web.router import BadCsrf, FormPage, PageDep, UserPage, api, failure
from citypair_web.sessions import COOKIE
from citypair_web.terms import LABELS

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
USER_FILTERS = ("role", "q", "disabled", "offset")
# Identity's rule, mirrored only to offer what can work: a coordinator may invite officials and observers.
INVITED_BY_COORDINATORS = ("official", "observer")
# The newest mails the development page shows.
MAILS_SHOWN = 100
# What the user list says after an action (`?done=`): the key of its text.
URL = re.compile(r"https?://[^\s<>\"']+")


# --- My account -------------------------------------------------------------------------------------------


@router.get("/account", response_class=HTMLResponse)
async def account(page: UserPage, request: Request):
    return await _account_page(page, done=request.query_params.get("done"))


async def _account_page(
    page: Page, status_code: int = 200, *, profile: dict | None = None, preferences: dict | None = None, **context
) -> HTMLResponse:
    """The page; a refused form's `profile` or `preferences` shown as typed, in place of what the API holds."""
    me = await api(page, "GET", "/api/v1/me")
    stored = await api(page, "GET", "/api/v1/me/preferences")
    if me.status_code != 200:
        return failure(page, me)
    if stored.status_code != 200:
        return failure(page, stored)
    return page.render(
        "account.html",
        status_code=status_code,
        me={**me.json(), **(profile or {})},
        preferences=preferences or stored.json(),
        mail_languages=i18n.NAMES,
        deliveries={key: page.term("delivery", key) for key in LABELS["delivery"]},
        errors=context.pop("errors", {}),
        **context,
    )


@router.post("/account/profile", response_class=HTMLResponse)
async def save_profile(page: FormPage, name: Annotated[str, Form()] = "", language: Annotated[str, Form()] = ""):
    body = {"name": name.strip(), "language": language}
    response = await api(page, "PATCH", "/api/v1/me", json=body)
    if response.status_code == 422:
        errors = forms.field_errors(response, page.lang)
        return await _account_page(
            page, 422, profile=body, errors=errors, message=page.gettext("Please fix the fields marked below.")
        )
    if response.status_code != 200:
        return failure(page, response)
    done = redirect("/account?done=saved")
    # The pages follow the language chosen for the mails, where they speak it.
    if language in i18n.LANGUAGES:
        remember_language(page.request, done, language)
    return done


@router.post("/account/preferences", response_class=HTMLResponse)
async def save_preferences(page: FormPage, request: Request):
    form = await request.form()
    current = await api(page, "GET", "/api/v1/me/preferences")
    if current.status_code != 200:
        return failure(page, current)
    # The kinds are the API's: each one it knows gets the form's choice.
    body = {
        "notifications": {kind: form.get(f"kind_{kind}", "") for kind in current.json()["notifications"]},
        "suggestion_min_score": _score(form.get("suggestion_min_score") or ""),
    }
    response = await api(page, "PUT", "/api/v1/me/preferences", json=body)
    if response.status_code == 422:
        errors = {
            key.replace("notifications.", "kind_"): text
            for key, text in forms.field_errors(response, page.lang).items()
        }
        return await _account_page(
            page, 422, preferences=body, errors=errors, message=page.gettext("Please fix the fields marked below.")
        )
    if response.status_code != 200:
        return failure(page, response)
    return redirect("/account?done=saved")


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(
    page: FormPage,
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
):
    body = {"current_password": current_password, "new_password": new_password}
    response = await api(page, "POST", "/api/v1/me/password", json=body)
    if response.status_code == 429:
        seconds = response.headers.get("retry-after", "60")
        return await _account_page(
            page, 429, message=page.gettext("Too many attempts. Try again in %(seconds)s s.", seconds=seconds)
        )
    if response.status_code == 422:
        return await _account_page(
            page,
            422,
            errors=forms.field_errors(response, page.lang),
            message=page.gettext("Please fix the fields marked below."),
        )
    if response.status_code != 200:
        return failure(page, response)
    return await _carry_on(page, response.json(), then="/account?done=password")


def _score(text: str) -> float | str:
    """A number as typed; anything else goes to the API as it is, which names the field."""
    try:
        return float(text)
    except ValueError:
        return text


async def _carry_on(page: Page, tokens: dict, *, then: str):
    """A password change ends every session, this one's tokens too; it goes on with the tokens the API returned,
    under a new session id (as after signing in: whoever held the old cookie holds nothing now)."""
    await page.request.app.state.sessions.drop(page.request.cookies.get(COOKIE))
    return await start_session(page, tokens, page.session.user, then)


# --- Users (admins and coordinators) ----------------------------------------------------------------------


@router.get("/users", response_class=HTMLResponse)
async def users(page: UserPage, request: Request):
    query = {k: v for k, v in request.query_params.items() if k in USER_FILTERS and v}
    return await _users_page(page, query, notice=_notice(page, request))


def _notice(page: Page, request: Request) -> str | None:
    """What the last action on the Users page did (it redirected here with `done`)."""
    done = request.query_params.get("done", "")
    if done == "invited":
        return page.gettext("Invitation mailed to %(email)s.", email=request.query_params.get("email", ""))
    if done == "saved":
        return page.gettext("The user's changes are saved; they sign in again.")
    if done == "reset":
        return page.gettext(
            "That user's password no longer works, their sessions have ended, and a reset link is mailed to them."
        )
    return None


async def _users_page(
    page: Page,
    query: dict,
    status_code: int = 200,
    *,
    invite: dict | None = None,
    typed: dict[str, str] | None = None,
    **context,
) -> HTMLResponse:
    """The list, the invitation form (`invite`: as typed in a refused one) and each user's cities field (`typed`:
    what a refused change typed, by user id; else their cities by name)."""
    response = await api(page, "GET", "/api/v1/users", params={**query, "limit": PAGE_SIZE})
    if response.status_code == 422:
        context["errors"] = {**forms.field_errors(response, page.lang), **context.get("errors", {})}
        response = await api(page, "GET", "/api/v1/users", params={"limit": PAGE_SIZE})
        status_code = 422
    if response.status_code != 200:
        return failure(page, response)
    result = response.json()
    invitations = await api(page, "GET", "/api/v1/invitations", params={"limit": 100})
    city_names = await _city_names(page, {c for user in result["items"] for c in user["city_ids"]})
    city_fields = {user["id"]: city_picker.field_value(user["city_ids"], city_names) for user in result["items"]}
    may_administer = "admin" in page.session.roles
    invitable = LABELS["role"] if may_administer else INVITED_BY_COORDINATORS
    return page.render(
        "users.html",
        status_code=status_code,
        result=result,
        query=query,
        back=urlencode(query),
        pager=_pager(query, result),
        invitations=invitations.json()["items"] if invitations.status_code == 200 else [],
        city_names=city_names,
        city_fields={**city_fields, **(typed or {})},
        may_administer=may_administer,
        roles={key: page.term("role", key) for key in LABELS["role"]},
        invitable={key: page.term("role", key) for key in invitable},
        mail_languages=i18n.NAMES,
        invite=invite or {"language": page.lang},
        errors=context.pop("errors", {}),
        **context,
    )


def _pager(query: dict, result: dict) -> dict:
    offset, total = int(result.get("offset") or 0), result["total"]
    without = {k: v for k, v in query.items() if k != "offset"}
    return {
        "previous": "?" + urlencode({**without, "offset": max(offset - PAGE_SIZE, 0)}) if offset > 0 else None,
        "next": "?" + urlencode({**without, "offset": offset + PAGE_SIZE}) if offset + PAGE_SIZE < total else None,
    }


async def _city_names(page: Page, city_ids: set[str]) -> dict[str, str]:
    """The names of the cities the listed users act for (a city we may not read keeps its id)."""
    found = await asyncio.gather(*(api(page, "GET", f"/api/v1/cities/{city_id}") for city_id in sorted(city_ids)))
    cities = [response.json() for response in found if response.status_code == 200]
    return {city["id"]: city["name"] for city in cities}


def _back(form) -> dict:
    """The list's filters the form came from (only those: the page goes back to /users, nowhere else)."""
    return {k: v for k, v in httpx.QueryParams(form.get("back") or "").items() if k in USER_FILTERS and v}


async def _city_ids(
    page: Page, text: str, current: dict[str, str] | None = None
) -> tuple[list[str], str | None] | HTMLResponse:
    """The cities field's entries as city ids, or the field's error (city_picker reads them; `current`: the names of
    the user's cities now, by id); the failure page if the directory did not answer."""
    typed, current = city_picker.entries(text), current or {}
    searched = city_picker.to_search(typed, current)
    searches = (api(page, "GET", "/api/v1/cities", params={"q": q, "limit": city_picker.SEARCHED}) for q in searched)
    answers = await asyncio.gather(*searches)
    found = {}
    for entry, answer in zip(searched, answers, strict=True):
        if answer.status_code not in (200, 422):
            return failure(page, answer)
        # a 422 refuses the search itself (a `q` longer than any name): no city is called so
        found[entry] = answer.json() if answer.status_code == 200 else {"items": [], "total": 0}
    ids, unresolved = city_picker.resolve(typed, found, current)
    return ids, city_picker.message(unresolved, page.lang) if unresolved else None


async def _current_cities(page: Page, user_id: str) -> dict[str, str]:
    """The names of the cities a user acts for now, by id (none if the user cannot be read: the change says why)."""
    response = await api(page, "GET", f"/api/v1/users/{user_id}")
    return await _city_names(page, set(response.json()["city_ids"])) if response.status_code == 200 else {}


@router.post("/users/invite", response_class=HTMLResponse)
async def invite(page: FormPage, request: Request):
    form = await request.form()
    typed = form.get("city_ids") or ""
    invite = {
        "email": (form.get("email") or "").strip(),
        "name": (form.get("name") or "").strip(),
        "roles": form.getlist("roles"),
        "language": form.get("language") or page.lang,
    }
    back = _back(form)
    cities = await _city_ids(page, typed)
    if isinstance(cities, HTMLResponse):
        return cities
    city_ids, error = cities
    if error:  # nothing goes to identity
        return await _users_page(page, back, 422, invite={**invite, "city_ids": typed}, errors={"city_ids": error})
    response = await api(page, "POST", "/api/v1/invitations", json={**invite, "city_ids": city_ids})
    if response.status_code == 201:
        return redirect("/users?" + urlencode({**back, "done": "invited", "email": invite["email"]}))
    if response.status_code in (409, 422):
        errors = _problem_fields(page, response, default="email")
        return await _users_page(page, back, response.status_code, invite={**invite, "city_ids": typed}, errors=errors)
    return failure(page, response)


@router.post("/users/{user_id}", response_class=HTMLResponse)
async def update_user(page: FormPage, user_id: str, request: Request):
    form = await request.form()
    typed, back = form.get("city_ids") or "", _back(form)
    cities = await _city_ids(page, typed, await _current_cities(page, user_id))
    if isinstance(cities, HTMLResponse):
        return cities
    city_ids, error = cities
    if error:  # nothing goes to identity
        return await _users_page(page, back, 422, errors={f"{user_id}.city_ids": error}, typed={user_id: typed})
    body: dict = {"city_ids": city_ids}
    if form.get("has_roles"):  # the roles are on the form for admins only (none ticked is an answer too)
        body["roles"] = form.getlist("roles")
    return await _change_user(page, user_id, body, back, typed={user_id: typed})


@router.post("/users/{user_id}/disabled", response_class=HTMLResponse)
async def set_disabled(page: FormPage, user_id: str, request: Request, disabled: Annotated[bool, Form()]):
    return await _change_user(page, user_id, {"disabled": disabled}, _back(await request.form()))


async def _change_user(page: Page, user_id: str, body: dict, back: dict, typed: dict[str, str] | None = None):
    response = await api(page, "PATCH", f"/api/v1/users/{user_id}", json=body)
    if response.status_code == 200:
        return redirect("/users?" + urlencode({**back, "done": "saved"}))
    if response.status_code == 422:
        errors = {f"{user_id}.{field}": text for field, text in forms.field_errors(response, page.lang).items()}
        return await _users_page(page, back, 422, errors=errors, typed=typed)
    return failure(page, response)


@router.post("/users/{user_id}/password-reset", response_class=HTMLResponse)
async def force_reset(page: FormPage, user_id: str, request: Request):
    response = await api(page, "POST", f"/api/v1/users/{user_id}/password-reset")
    if response.status_code >= 400:
        return failure(page, response)
    return redirect("/users?" + urlencode({**_back(await request.form()), "done": "reset"}))


def _problem_fields(page: Page, response: httpx.Response, *, default: str) -> dict[str, str]:
    """The fields a problem names (422's `errors`); another problem (e.g. 409, 410) next to `default`."""
    if "json" not in response.headers.get("content-type", ""):
        return {default: response.reason_phrase}
    problem = response.json()
    if problem.get("errors"):
        return forms.field_errors(response, page.lang)
    return {default: forms.problem_message(problem, page.lang) or problem.get("detail") or problem.get("title", "")}


# --- The pages the mails link to (no sign-in) -------------------------------------------------------------


async def _anonymous(page: Page, path: str, body: dict) -> httpx.Response:
    """A POST that needs no sign-in. Throttled per address: the browser's, which the gateway believes from web."""
    client = page.request.client.host if page.request.client else "unknown"
    return await page.request.app.state.api.client.post(path, json=body, headers={"X-Forwarded-For": client})


def _posted(page: Page, csrf: str) -> None:
    if not csrf_ok(page, csrf):
        raise BadCsrf()


@router.get("/invitations/{token}", response_class=HTMLResponse)
async def invitation(page: PageDep, token: str):
    return page.render("invitation.html", token=token, errors={})


@router.post("/invitations/{token}", response_class=HTMLResponse)
async def accept_invitation(
    page: PageDep,
    token: str,
    password: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
):
    _posted(page, csrf)
    body = {"token": token, "password": password, **({"name": name.strip()} if name.strip() else {})}
    response = await _anonymous(page, "/api/v1/invitations/accept", body)
    if response.status_code == 201:
        return page.render(
            "signin.html",
            notice=page.gettext("Your account is ready: sign in with your e-mail address and the new password."),
            email=response.json()["email"],
        )
    return _token_page_failed(page, "invitation.html", response, token=token, name=name)


@router.get("/forgot-password", response_class=HTMLResponse)
async def forgot(page: PageDep):
    return page.render("forgot.html", errors={})


@router.post("/forgot-password", response_class=HTMLResponse)
async def send_reset_link(page: PageDep, email: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = ""):
    _posted(page, csrf)
    response = await _anonymous(page, "/api/v1/password-resets", {"email": email.strip()})
    if response.status_code == 429:
        seconds = response.headers.get("retry-after", "60")
        return page.render(
            "forgot.html",
            429,
            errors={},
            email=email,
            message=page.gettext("Too many attempts. Try again in %(seconds)s s.", seconds=seconds),
        )
    if response.status_code == 422:
        return page.render("forgot.html", 422, errors=forms.field_errors(response, page.lang), email=email)
    if response.status_code != 202:
        return failure(page, response)
    # The same answer whether or not an account has this address.
    return page.render("forgot.html", errors={}, sent=True)


@router.get("/password-reset/{token}", response_class=HTMLResponse)
async def reset_form(page: PageDep, token: str):
    return page.render("reset.html", token=token, errors={})


@router.post("/password-reset/{token}", response_class=HTMLResponse)
async def reset_password(
    page: PageDep, token: str, password: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = ""
):
    _posted(page, csrf)
    response = await _anonymous(page, "/api/v1/password-resets/complete", {"token": token, "password": password})
    if response.status_code == 204:
        return page.render("signin.html", notice=page.gettext("Your new password is set: sign in with it."))
    return _token_page_failed(page, "reset.html", response, token=token)


def _token_page_failed(page: Page, template: str, response: httpx.Response, **context) -> HTMLResponse:
    """A refused link (410: used, expired or unknown — one answer for all; 422 `token`: not even shaped like one)
    or a refused password (422)."""
    errors = _problem_fields(page, response, default="password")
    if response.status_code == 410 or "token" in errors:
        return page.render(template, response.status_code, errors={}, gone=True, **context)
    if response.status_code in (422, 429):
        return page.render(template, response.status_code, errors=errors, **context)
    return failure(page, response)


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe_form(page: PageDep, token: str):
    # Nothing changes on GET: mail scanners follow the links in mails.
    return page.render("unsubscribe.html", token=token)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe(page: PageDep, token: str, csrf: Annotated[str, Form()] = ""):
    _posted(page, csrf)
    response = await _anonymous(page, "/api/v1/unsubscribe", {"token": token})
    if response.status_code == 200:
        kind = page.term("notification", response.json()["kind"])
        return page.render(
            "unsubscribe.html",
            token=token,
            done=page.gettext("Done: no more e-mails about “%(kind)s”. My account turns them on again.", kind=kind),
        )
    if response.status_code in (400, 410, 422):
        return page.render("unsubscribe.html", response.status_code, token=token, gone=True)
    return failure(page, response)


# --- Development: the mails the local SMTP server kept ----------------------------------------------------


@router.get("/dev/mail", response_class=HTMLResponse)
async def dev_mail(page: PageDep):
    """Only where web's DEV_MAIL_DIR is set (by `citypair run`, never in production), and then to anyone: in a
    development stack the invitee reads their invitation before they have an account."""
    folder = page.request.app.state.runtime.settings.dev_mail_dir
    if folder is None:
        return page.render("error.html", 404, message=page.gettext("Not found."))
    return page.render("dev_mail.html", mails=read_mails(Path(folder)), folder=folder)


def read_mails(folder: Path) -> list[dict]:
    """The kept mails, newest first: headers, and the plain-text part cut into text and links."""
    files = sorted(folder.glob("*.eml"), key=lambda path: (path.stat().st_mtime, path.name), reverse=True)
    mails = []
    for path in files[:MAILS_SHOWN]:
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        mails.append(
            {
                "file": path.name,
                "from": str(message.get("From", "")),
                "to": str(message.get("To", "")),
                "subject": str(message.get("Subject", "")),
                "date": str(message.get("Date", "")),
                "text": linked(body.get_content() if body else ""),
            }
        )
    return mails


def linked(text: str) -> list[tuple[str, bool]]:
    """`text` as pieces, each (piece, is_link): the template makes the links clickable and escapes the rest."""
    pieces, at = [], 0
    for match in URL.finditer(text):
        pieces += [(text[at : match.start()], False), (match.group(), True)]
        at = match.end()
    return [*pieces, (text[at:], False)]
