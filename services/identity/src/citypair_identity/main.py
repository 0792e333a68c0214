"""The one wiring point of the identity service."""

from fastapi import FastAPI

from citypair_identity.config import Settings
from citypair_identity.router import router
from citypair_shared.app import build_app
from citypair_shared.runtime import Runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = Runtime(settings, database_models=True)
    return build_app(title="citypair identity", runtime=runtime, routers=[router])
