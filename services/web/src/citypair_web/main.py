"""The one wiring point of the web service."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from citypair_shared.app import build_app
from citypair_shared.runtime import Runtime
from citypair_web.config import Settings
from citypair_web.router import router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = build_app(title="citypair web", runtime=Runtime(settings), routers=[router])
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    return app
