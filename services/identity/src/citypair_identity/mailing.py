"""Notifications by mail: at once for the kinds a user wants so, and once a day a digest of the kinds they want
in it. A digest's mail key, `digest:{user}:{day}`, is unique: a user gets one a day, however many replicas run
the job and however often it runs."""

import asyncio
import contextlib
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from citypair_identity import mail, preferences
from citypair_identity.keys import current_key
from citypair_identity.models import JobSlot, Notification, SigningKey, User
from citypair_identity.notifications import notify, title_in
from citypair_identity.service import IdentityContext
from citypair_shared.events import CloudEvent
from citypair_shared.logging import get_logger
from citypair_shared.runtime import Runtime
from citypair_shared.schedule import take_slot

log = get_logger(__name__)
DIGEST_JOB = "mail-digest"


def _unsubscribe(ctx: IdentityContext, key: SigningKey, user: User, kind: str) -> mail.Unsubscribe:
    token = preferences.unsubscribe_token(key, user_id=user.id, kind=kind)
    return mail.unsubscribe_note(user.language, kind=kind, url=ctx.link(f"/unsubscribe/{token}"))


def notify_and_mail(ctx: IdentityContext):
    """The handler of a notified event: notifications for the users concerned, and a mail now to each who wants
    this kind at once (in the same transaction, keyed by event and user: a redelivered event mails no one twice).
    Notifications of kinds not in the digest are done with for the mail side from the start."""

    async def handle(event: CloudEvent, session: AsyncSession) -> None:
        made = await notify(event, session)
        if not made:
            return
        modes = await preferences.modes_of(session, sorted({user.id for user, _ in made}))
        key = await session.scalar(current_key())
        now = datetime.now(UTC)
        for user, notification in made:
            mode = modes[user.id][notification.mail_kind]
            if mode != "digest":
                notification.mailed_at = now
            if mode != "immediate":
                continue
            letter = mail.notification(
                user.language,
                name=user.name,
                title=title_in(user.language, notification.kind, notification.title),
                url=ctx.link(notification.link),
                unsubscribe=_unsubscribe(ctx, key, user, notification.mail_kind),
            )
            await mail.enqueue(
                session,
                key=f"notification:{event.id}:{user.id}",
                recipient=user.email,
                mail=letter,
                wake=ctx.wake_sender,
            )

    return handle


async def send_digests(session_factory: async_sessionmaker[AsyncSession], ctx: IdentityContext, now: datetime) -> int:
    """Queue today's digest for each user with notifications waiting for one, once the digest hour has come;
    returns how many were queued here."""
    if now.hour < ctx.settings.digest_hour_utc:
        return 0
    async with session_factory() as session:
        waiting = select(Notification.user_id).where(Notification.mailed_at.is_(None), Notification.created_at <= now)
        user_ids = sorted(set(await session.scalars(waiting)))
    queued = 0
    for user_id in user_ids:
        async with session_factory() as session:
            queued += await _digest(session, ctx, user_id, day=now.date(), now=now)
    return queued


async def _digest(session: AsyncSession, ctx: IdentityContext, user_id: str, *, day: date, now: datetime) -> int:
    """One user's digest of `day`: every waiting notification of a kind they want in it (those of other kinds are
    done with). If the day's digest went out already, they wait for the next day's."""
    waiting = await session.scalars(
        select(Notification)
        .where(Notification.user_id == user_id, Notification.mailed_at.is_(None), Notification.created_at <= now)
        .order_by(Notification.created_at)
        .with_for_update()  # a second run at once waits here, then finds them taken
    )
    waiting = list(waiting)
    user = await session.get(User, user_id)
    modes = (await preferences.modes_of(session, [user_id]))[user_id]
    wanted = [n for n in waiting if modes.get(n.mail_kind) == "digest"]
    queued = 0
    if wanted and user is not None and not user.disabled:
        letter = mail.digest(
            user.language,
            name=user.name,
            items=[mail.Link(title_in(user.language, n.kind, n.title), ctx.link(n.link)) for n in wanted],
            unsubscribe=_unsubscribe(ctx, await session.scalar(current_key()), user, preferences.DIGEST),
        )
        key = f"digest:{user_id}:{day.isoformat()}"
        if not await mail.enqueue(session, key=key, recipient=user.email, mail=letter, wake=ctx.wake_sender):
            await session.rollback()
            return 0
        queued = 1
    for notification in waiting:
        notification.mailed_at = now
    await session.commit()
    return queued


async def run_digests(runtime: Runtime, ctx: IdentityContext, stop: asyncio.Event) -> None:
    """Every `digest_check_seconds`, in one replica (the job slot): queue the digests that are due."""
    period = ctx.settings.digest_check_seconds
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=period)
        if stop.is_set():
            break
        try:
            if not await take_slot(runtime.session_factory, JobSlot, DIGEST_JOB, period_seconds=period):
                continue  # another replica runs this period's check
            if queued := await send_digests(runtime.session_factory, ctx, datetime.now(UTC)):
                log.info("mail.digests_queued", count=queued)
        except Exception as exc:  # the database is away: the next check tries again
            log.warning("mail.digests_failed", error=repr(exc))
