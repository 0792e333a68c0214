"""Accounts by e-mail: invitations, password resets asked for by their users or forced by an admin.

Every link carries a random secret, stored only as its SHA-256, that works once (a single UPDATE … WHERE unused
AND unexpired claims it: of two requests with one link, exactly one gets through) until it expires."""

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_identity import mail, throttle
from citypair_identity.models import Invitation, PasswordReset, User
from citypair_identity.passwords import email_words, weakness
from citypair_identity.schemas import InvitationAccept, InvitationCreate, ResetComplete
from citypair_identity.service import (
    IdentityContext,
    announce,
    audit,
    email_taken,
    get_user,
    hash_token,
    hasher,
    throttled,
    void_tokens,
    wrong_field,
)
from citypair_shared.auth import Principal, forbidden
from citypair_shared.db import retry_on_conflict
from citypair_shared.events import UserRegistered
from citypair_shared.problems import Problem

# Coordinators invite the people whose work they coordinate; admins invite anyone.
COORDINATOR_INVITES = {"official", "observer"}
# Reset requests are counted on throttle.py's counters under these names (an address by its hash: any length fits).
RESETS_OF = "password-reset:"
RESETS_FROM = "password-reset"


def gone() -> Problem:
    """One answer whether the link was used, has expired or never existed: it tells a guesser nothing."""
    return Problem(
        410,
        "Link no longer valid",
        "the link was used already, has expired, or is unknown: ask for a new one",
        type_="/problems/link-gone",
        errors=[{"field": "token", "message": "is used, expired or unknown"}],
    )


def _weak_for(password: str, email: str, name: str) -> str | None:
    return weakness(password, context=[*email_words(email), *name.split()])


async def invite(
    *, session: AsyncSession, ctx: IdentityContext, actor: Principal, data: InvitationCreate
) -> Invitation:
    """Invite someone by e-mail; an earlier invitation to the same address stops working (the newest link counts)."""
    roles = sorted({r.value for r in data.roles})
    if not actor.has_role("admin") and set(roles) - COORDINATOR_INVITES:
        raise forbidden(
            "coordinators may invite officials and observers only", allowed_roles=sorted(COORDINATOR_INVITES)
        )
    email, now = data.email.lower(), datetime.now(UTC)
    if await session.scalar(select(User.id).where(User.email == email)):
        raise email_taken(email)
    await session.execute(
        update(Invitation)
        .where(Invitation.email == email, Invitation.accepted_at.is_(None), Invitation.expires_at > now)
        .values(expires_at=now)
    )
    token = secrets.token_urlsafe(32)
    hours = ctx.settings.invitation_hours
    invitation = Invitation(
        id=str(uuid.uuid4()),
        token_hash=hash_token(token),
        email=email,
        name=data.name,
        roles=roles,
        city_ids=sorted(set(data.city_ids)),
        language=data.language,
        invited_by=actor.user_id,
        created_at=now,
        expires_at=now + timedelta(hours=hours),
    )
    session.add(invitation)
    letter = mail.invitation(
        data.language, name=data.name, role_names=roles, url=ctx.link(f"/invitations/{token}"), hours=int(hours)
    )
    await mail.enqueue(session, key=f"invitation:{invitation.id}", recipient=email, mail=letter, wake=ctx.wake_sender)
    audit(session, "invitation.sent", actor=actor.user_id, subject=email, roles=roles, cities=invitation.city_ids)
    await session.commit()
    return invitation


async def pending_invitations(*, session: AsyncSession, limit: int, offset: int):
    """Invitations not accepted whose link still works, the newest first."""
    query = select(Invitation).where(Invitation.accepted_at.is_(None), Invitation.expires_at > datetime.now(UTC))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(Invitation.created_at.desc()).limit(limit).offset(offset))
    return list(rows), total


async def accept(*, session: AsyncSession, ctx: IdentityContext, data: InvitationAccept, address: str) -> User:
    """Become the invited user with a password of one's own; they then sign in as anyone does."""
    token_hash, now = hash_token(data.token), datetime.now(UTC)
    invitation = await session.scalar(select(Invitation).where(Invitation.token_hash == token_hash))
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at <= now:
        raise gone()
    name = data.name if data.name is not None else invitation.name
    if _weak_for(data.password, invitation.email, name):
        raise wrong_field("password", "must not contain your e-mail address or name", code="password_personal")
    # Argon2 before the claim: the claim's write lock is not held while it hashes.
    password_hash = await asyncio.to_thread(hasher.hash, data.password)
    claimed = await session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None), Invitation.expires_at > now)
        .values(accepted_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        await session.rollback()
        raise gone()
    user = User(
        id=str(uuid.uuid4()),
        email=invitation.email,
        name=name,
        language=invitation.language,
        password_hash=password_hash,
        roles=list(invitation.roles),
        city_ids=list(invitation.city_ids),
        token_version=1,
    )
    session.add(user)
    announce(session, ctx, user, UserRegistered)
    audit(session, "invitation.accepted", actor=user.id, subject=user.id, address=address, invitation=invitation.id)
    try:
        await session.commit()
    except IntegrityError:
        # The address became a user meanwhile (the unique index decided): the link stays unused.
        await session.rollback()
        raise email_taken(invitation.email) from None
    return user


async def request_reset(*, session: AsyncSession, ctx: IdentityContext, email: str, address: str) -> None:
    """Mail a reset link if `email` is an enabled user's. The caller answers alike either way; both ways count
    against the throttle and take the same steps but writing the link and its mail."""
    email, now, s = email.lower(), datetime.now(UTC), ctx.settings
    window = timedelta(seconds=s.reset_window_seconds)
    waits = [
        await throttle.over_limit(
            session,
            account=RESETS_OF + hash_token(email),
            address=throttle.ANY,
            limit=s.reset_requests_per_email,
            now=now,
            window=window,
        ),
        await throttle.over_limit(
            session,
            account=RESETS_FROM,
            address=address,
            limit=s.reset_requests_per_address,
            now=now,
            window=window,
        ),
    ]
    if wait := max(waits):
        await session.rollback()  # a refused request is not counted
        audit(session, "password_reset.throttled", subject=email, address=address)
        await session.commit()
        raise throttled(wait.total_seconds(), "Too many password reset requests")
    user = await session.scalar(select(User).where(User.email == email))
    known = user is not None and not user.disabled
    if known:
        await _send_reset_link(session, ctx, user, forced_by=None)
    audit(session, "password_reset.requested", subject=email, address=address, known=known)
    await session.commit()


async def _send_reset_link(session: AsyncSession, ctx: IdentityContext, user: User, *, forced_by: str | None) -> None:
    token = secrets.token_urlsafe(32)
    minutes = ctx.settings.reset_link_minutes
    reset = PasswordReset(
        token_hash=hash_token(token),
        user_id=user.id,
        forced_by=forced_by,
        expires_at=datetime.now(UTC) + timedelta(minutes=minutes),
    )
    session.add(reset)
    letter = mail.password_reset(
        user.language,
        name=user.name,
        url=ctx.link(f"/password-reset/{token}"),
        minutes=int(minutes),
        forced=forced_by is not None,
    )
    key = f"password-reset:{reset.token_hash}"
    await mail.enqueue(session, key=key, recipient=user.email, mail=letter, wake=ctx.wake_sender)


@retry_on_conflict
async def complete_reset(*, session: AsyncSession, ctx: IdentityContext, data: ResetComplete, address: str) -> None:
    """Set a new password with a reset link; every session of the user ends, and their other links stop working."""
    token_hash, now = hash_token(data.token), datetime.now(UTC)
    reset = await session.get(PasswordReset, token_hash)
    if reset is None or reset.used_at is not None or reset.expires_at <= now:
        raise gone()
    user = await get_user(session=session, user_id=reset.user_id)
    if _weak_for(data.password, user.email, user.name):
        raise wrong_field("password", "must not contain your e-mail address or name", code="password_personal")
    password_hash = await asyncio.to_thread(hasher.hash, data.password)
    claimed = await session.execute(
        update(PasswordReset)
        .where(PasswordReset.token_hash == token_hash, PasswordReset.used_at.is_(None), PasswordReset.expires_at > now)
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        await session.rollback()
        raise gone()
    await session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    user.password_hash = password_hash
    user.updated_at = now
    await void_tokens(session, ctx, user, reason="password_reset")
    audit(session, "password_reset.completed", actor=user.id, subject=user.id, address=address)
    await session.commit()


@retry_on_conflict
async def force_reset(
    *, session: AsyncSession, ctx: IdentityContext, actor: Principal, user_id: str, address: str
) -> None:
    """An admin's reset: the password stops working at once (replaced by a random one nobody knows), every
    session ends, and the user is mailed a link to choose a new one."""
    user = await get_user(session=session, user_id=user_id)
    user.password_hash = await asyncio.to_thread(hasher.hash, secrets.token_urlsafe(32))
    user.updated_at = datetime.now(UTC)
    await void_tokens(session, ctx, user, reason="password_reset_forced")
    await _send_reset_link(session, ctx, user, forced_by=actor.user_id)
    audit(session, "password_reset.forced", actor=actor.user_id, subject=user.id, address=address)
    await session.commit()
