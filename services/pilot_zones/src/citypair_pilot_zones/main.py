"""The one wiring point of the pilot_zones service."""

from fastapi import FastAPI

from citypair_pilot_zones import sweeper
from citypair_pilot_zones.config import Settings
from citypair_pilot_zones.handlers import EVENT_HANDLERS
from citypair_pilot_zones.models import IdempotencyRecord, Inbox, Outbox
from citypair_pilot_zones.router import open_data_router, router
from citypair_shared.app import build_app
from citypair_shared.runtime import Runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = Runtime(
        settings,
        outbox_model=Outbox,
        inbox_model=Inbox,
        idempotency_model=IdempotencyRecord,
        event_handlers=EVENT_HANDLERS,
        on_start=[sweeper.start],
    )
    return build_app(title="citypair pilot zones", runtime=runtime, routers=[router, open_data_router])
