"""The one wiring point of the profiles service."""

from fastapi import FastAPI

from citypair_profiles.cards import Cards
from citypair_profiles.config import Settings
from citypair_profiles.handlers import EVENT_HANDLERS
from citypair_profiles.models import IdempotencyRecord, Outbox
from citypair_profiles.router import open_data_router, router
from citypair_shared.app import build_app
from citypair_shared.runtime import Runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = Runtime(settings, outbox_model=Outbox, idempotency_model=IdempotencyRecord, event_handlers=EVENT_HANDLERS)
    app = build_app(title="citypair profiles", runtime=runtime, routers=[router, open_data_router])
    app.state.cards = Cards()
    return app
