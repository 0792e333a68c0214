"""The one wiring point of the identity service."""

import asyncio

from fastapi import FastAPI

from citypair_identity import mailing, service
from citypair_identity.config import Settings
from citypair_identity.handlers import event_handlers
from citypair_identity.mail_sender import MailSender
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

    async def start_mail(runtime: Runtime) -> None:
        """The mail sender and the digest job: runtime tasks, stopped with it."""
        ctx.mail_sender = MailSender(runtime.session_factory, settings)
        runtime._tasks.append(asyncio.create_task(ctx.mail_sender.run(runtime._stop), name="mail-sender"))
        digests = mailing.run_digests(runtime, ctx, runtime._stop)
        runtime._tasks.append(asyncio.create_task(digests, name="mail-digests"))

    runtime = Runtime(
        settings,
        outbox_model=Outbox,
        inbox_model=Inbox,
        idempotency_model=IdempotencyRecord,
        event_handlers=event_handlers(ctx),
        on_start=[bootstrap, start_mail],
    )
    app = build_app(title="citypair identity", runtime=runtime, routers=[router])
    app.state.identity = ctx
    return app
