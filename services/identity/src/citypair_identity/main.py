"""The one wiring point of the identity service."""

from fastapi import FastAPI

from citypair_identity import service
from citypair_identity.config import Settings
from citypair_identity.handlers import EVENT_HANDLERS
from citypair_identity.models import IdempotencyRecord, Inbox, Outbox
from citypair_identity.router import router
from citypair_shared.app import build_app
from citypair_shared.runtime import Runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    ctx = service.IdentityContext(settings=settings)

    async def bootstrap(runtime: Runtime) -> None:
        ctx.relay = runtime.relay
        async with runtime.session_factory() as session:
            await service.bootstrap(session=session, ctx=ctx)

    runtime = Runtime(
        settings,
        outbox_model=Outbox,
        inbox_model=Inbox,
        idempotency_model=IdempotencyRecord,
        event_handlers=EVENT_HANDLERS,
        on_start=[bootstrap],
    )
    app = build_app(title="citypair identity", runtime=runtime, routers=[router])
    app.state.identity = ctx
    return app
