"""What every page needs: the language, the session, the CSRF token, and rendering."""

import secrets
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from citypair_shared.geography import INDICATORS
from citypair_web import i18n
from citypair_web.sessions import COOKIE, LANG_COOKIE, Session
from citypair_web.terms import LABELS

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.add_extension("jinja2.ext.i18n")


# The templates' `_`, `gettext`, `ngettext` and `pgettext` translate into the language of the page being rendered.
@pass_context
def _gettext(context, message: str) -> str:
    return i18n.translations(context["lang"]).gettext(message)


@pass_context
def _ngettext(context, singular: str, plural: str, n: int) -> str:
    return i18n.translations(context["lang"]).ngettext(singular, plural, n)


@pass_context
def _pgettext(context, message_context: str, message: str) -> str:
    return i18n.translations(context["lang"]).pgettext(message_context, message)


@pass_context
def _npgettext(context, message_context: str, singular: str, plural: str, n: int) -> str:
    return i18n.translations(context["lang"]).npgettext(message_context, singular, plural, n)


templates.env.install_gettext_callables(_gettext, _ngettext, newstyle=True, pgettext=_pgettext, npgettext=_npgettext)
PRE_SESSION_CSRF = "citypair_csrf"


@dataclass
class Page:
    request: Request
    lang: str
    session: Session | None
    csrf: str

    def gettext(self, message: str, **values) -> str:
        return i18n.gettext(message, self.lang, **values)

    def term(self, kind: str, key: str) -> str:
        return i18n.term(kind, key, self.lang)

    def render(self, template: str, status_code: int = 200, **context) -> HTMLResponse:
        response = templates.TemplateResponse(
            self.request,
            template,
            {
                "page": self,
                "lang": self.lang,
                "languages": i18n.NAMES,
                "direction": "rtl" if self.lang in i18n.RTL else "ltr",
                # from → to, pointing the way the page reads (mirrored right to left)
                "forward": "←" if self.lang in i18n.RTL else "→",
                "country": lambda code: i18n.country(code, self.lang),
                "user": self.session.user if self.session else None,
                "csrf": self.csrf,
                "themes": {key: self.term("theme", key) for key in LABELS["theme"]},
                "corridors": {key: self.term("corridor", key) for key in LABELS["corridor"]},
                "indicators": {key: (self.term("indicator", key), *spec[1:]) for key, spec in INDICATORS.items()},
                "term": self.term,
                "theme_flow": lambda flow: i18n.theme_flow(flow, self.lang),
                "notification": lambda item: i18n.notification(item, self.lang),
                "number": lambda v: i18n.number(v, self.lang),
                "date": lambda v: i18n.date(v, self.lang),
                **context,
            },
            status_code=status_code,
        )
        remember_language(self.request, response, self.lang)
        if self.session is None and PRE_SESSION_CSRF not in self.request.cookies:
            response.set_cookie(PRE_SESSION_CSRF, self.csrf, httponly=True, samesite="strict")
        return response


def language(request: Request, session: Session | None = None) -> str:
    """The language switch (the query, then its cookie), else the user's setting, else `Accept-Language`."""
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    setting = session.language if session else None
    for wanted in (chosen, setting):
        if wanted in i18n.LANGUAGES:
            return wanted
    return i18n.negotiate(request.headers.get("accept-language", "")) or "en"


def remember_language(request: Request, response, lang: str) -> None:
    """Only a choice made with the switch is kept: the user's setting and the browser's may change."""
    if request.query_params.get("lang") == lang and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax")


async def page_for(request: Request) -> Page:
    session = await request.app.state.sessions.get(request.cookies.get(COOKIE))
    csrf = session.csrf if session else request.cookies.get(PRE_SESSION_CSRF) or secrets.token_urlsafe(24)
    return Page(request=request, lang=language(request, session), session=session, csrf=csrf)


def csrf_ok(page: Page, submitted: str | None) -> bool:
    """Every form carries the session's token (or, before sign-in, the cookie's): a forged post has neither."""
    expected = page.session.csrf if page.session else page.request.cookies.get(PRE_SESSION_CSRF)
    return bool(expected and submitted and secrets.compare_digest(expected, submitted))


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def start_session(page: Page, tokens: dict, user: dict, then: str = "/") -> RedirectResponse:
    """A new session holding these tokens (after signing in, or a password change), its cookie set on the way to
    `then`: whoever held an older cookie holds nothing of it."""
    session_id = await page.request.app.state.sessions.create(
        access_token=tokens["access_token"], refresh_token=tokens["refresh_token"], user=user
    )
    settings = page.request.app.state.runtime.settings
    done = redirect(then)
    done.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=int(settings.session_hours * 3600),
    )
    return done
