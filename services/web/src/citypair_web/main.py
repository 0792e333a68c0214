"""The one wiring point of the web service."""

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

from citypair_shared.app import build_app
from citypair_shared.runtime import Runtime
from citypair_web import accounts, map_page
from citypair_web.api import Api
from citypair_web.cities_pages import router as cities_pages
from citypair_web.config import Settings
from citypair_web.pages import page_for, redirect
from citypair_web.proposals import router as proposals
from citypair_web.router import BadCsrf, NotSignedIn, router
from citypair_web.sessions import BUCKET, SessionStore


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    sessions = SessionStore(lifetime_seconds=settings.session_hours * 3600)

    async def open_sessions(runtime: Runtime) -> None:
        await sessions.open(runtime.bus)

    runtime = Runtime(settings, buckets=(BUCKET,), on_start=[open_sessions])
    app = build_app(
        title="citypair web",
        runtime=runtime,
        routers=[cities_pages, router, accounts.router, map_page.router, proposals],
    )
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.state.sessions = sessions
    app.state.api = Api(settings.api_url, sessions)

    runtime_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with runtime_lifespan(app):
            yield
        await app.state.api.close()

    app.router.lifespan_context = lifespan

    @app.exception_handler(BadCsrf)
    async def _forged(request: Request, exc: BadCsrf):
        page = await page_for(request)
        return page.render(
            "error.html",
            status_code=400,
            message=page.gettext("Something went wrong. Please try again."),
            detail="CSRF",
        )

    @app.exception_handler(NotSignedIn)
    async def _sign_in_first(request: Request, exc: NotSignedIn):
        page = await page_for(request)
        if request.url.path == "/":
            return page.render("signin.html")
        return redirect("/?next=" + request.url.path)

    return app
