"""Identity use cases: sign-in, tokens, keys, users and the audit log."""

import asyncio
import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from fastapi.exceptions import RequestValidationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_identity import throttle
from citypair_identity.config import Settings
from citypair_identity.keys import current_key, new_signing_key, published
from citypair_identity.mail_sender import MailSender
from citypair_identity.metrics import SIGN_INS
from citypair_identity.models import AuditEntry, RefreshToken, SigningKey, User, UserRole
from citypair_identity.passwords import email_words, weakness
from citypair_identity.schemas import MeUpdate, PasswordChange, TokenOut, UserCreate, UserUpdate
from citypair_shared.auth import ALGORITHM, Principal, forbidden, unauthorized
from citypair_shared.db import retry_on_conflict
from citypair_shared.events import TokensRevoked, UserRegistered, UserRolesChanged, UserSnapshot, new_event
from citypair_shared.logging import get_logger
from citypair_shared.outbox import OutboxRelay
from citypair_shared.problems import Problem, not_found

log = get_logger(__name__)
SOURCE = "/citypair/identity"
hasher = PasswordHasher()  # Argon2id with the library's recommended parameters
# Verified against when the account does not exist, so a wrong email costs the same time.
_DUMMY_HASH = hasher.hash(secrets.token_urlsafe(16))


@dataclass
class IdentityContext:
    """What identity's use cases share beyond a session: settings, the relay, the mail sender, the sign-in policy."""

    settings: Settings
    relay: OutboxRelay | None = None
    mail_sender: MailSender | None = None
    signin_policy: throttle.Policy = field(init=False)

    def __post_init__(self):
        self.signin_policy = throttle.Policy.from_settings(self.settings)

    @property
    def access_lifetime(self) -> timedelta:
        return timedelta(minutes=self.settings.access_token_minutes)

    def link(self, path: str) -> str:
        """An address in mails: a page of web at the public URL."""
        return self.settings.public_url.rstrip("/") + path

    def wake_sender(self) -> None:
        if self.mail_sender is not None:
            self.mail_sender.wake()


def audit(
    session: AsyncSession,
    action: str,
    *,
    actor: str | None = None,
    subject: str | None = None,
    address: str | None = None,
    **detail,
) -> None:
    session.add(AuditEntry(action=action, actor_id=actor, subject=subject, address=address, detail=detail))
    log.info("audit." + action, actor=actor, subject=subject, address=address)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


BOOTSTRAP_ATTEMPTS = 3


async def bootstrap(*, session: AsyncSession, ctx: IdentityContext) -> None:
    """On start: a signing key, and the first admin from settings if there is no admin yet. Replicas may
    start together: the unique e-mail refuses the second admin, and this runs again and finds the first."""
    for attempt in range(1, BOOTSTRAP_ATTEMPTS + 1):
        try:
            return await _bootstrap(session, ctx)
        except IntegrityError:
            await session.rollback()
            if attempt == BOOTSTRAP_ATTEMPTS:
                raise


async def _bootstrap(session: AsyncSession, ctx: IdentityContext) -> None:
    if await session.scalar(current_key()) is None:
        session.add(new_signing_key())
    await _announce_users_once(session, ctx)
    admins = [u for u in await session.scalars(select(User)) if "admin" in u.roles]
    password = ctx.settings.admin_password
    if not admins and password is not None:
        email = ctx.settings.admin_email.lower()
        existing = await session.scalar(select(User).where(User.email == email))
        if existing is None:
            admin = User(
                id=str(uuid.uuid4()),
                email=email,
                password_hash=hasher.hash(password.get_secret_value()),
                roles=["admin"],
                city_ids=[],
                token_version=1,
            )
            session.add(admin)
            announce(session, ctx, admin, UserRegistered)
            audit(session, "admin.bootstrapped", subject=email)
    elif not admins:
        log.warning("identity.no_admin", hint="set CITYPAIR_ADMIN_EMAIL and CITYPAIR_ADMIN_PASSWORD")
    await session.commit()


def announce(
    session: AsyncSession, ctx: IdentityContext, user: User, event: type[UserRegistered | UserRolesChanged]
) -> None:
    """Stage the user's roles for the other services (pilot_zones knows its reviewers from them)."""
    snapshot = UserSnapshot(
        id=user.id, version=user.token_version, roles=list(user.roles), disabled=bool(user.disabled)
    )
    ctx.relay.add(session, new_event(event(user=snapshot), source=SOURCE, subject=user.id))


async def _announce_users_once(session: AsyncSession, ctx: IdentityContext) -> None:
    """Announce every user once per database: those created before identity published user events
    would otherwise stay unknown to the other services until their roles next change."""
    if await session.scalar(select(AuditEntry.seq).where(AuditEntry.action == "users.announced").limit(1)):
        return
    users = list(await session.scalars(select(User)))
    for user in users:
        announce(session, ctx, user, UserRegistered)
    audit(session, "users.announced", count=len(users))


async def jwks(*, session: AsyncSession, ctx: IdentityContext) -> dict:
    keys = list(await session.scalars(select(SigningKey).order_by(SigningKey.created_at)))
    return {"keys": published(keys, token_lifetime=ctx.access_lifetime)}


async def rotate_key(*, session: AsyncSession, ctx: IdentityContext, actor: Principal) -> str:
    """A new key signs from now on; the old one stays published until its last token expires."""
    now = datetime.now(UTC)
    await session.execute(update(SigningKey).where(SigningKey.retired_at.is_(None)).values(retired_at=now))
    key = new_signing_key()
    session.add(key)
    audit(session, "keys.rotated", actor=actor.user_id, subject=key.kid)
    await session.commit()
    return key.kid


def _access_token(ctx: IdentityContext, user: User, key: SigningKey) -> str:
    now = datetime.now(UTC)
    claims = {
        "iss": ctx.settings.token_issuer,
        "aud": ctx.settings.token_audience,
        "sub": user.id,
        "email": user.email,
        "roles": list(user.roles),
        "cities": list(user.city_ids),
        "ver": user.token_version,
        "iat": now,
        "exp": now + ctx.access_lifetime,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key.private_pem, algorithm=ALGORITHM, headers={"kid": key.kid})


async def _issue(session: AsyncSession, ctx: IdentityContext, user: User, family_id: str | None = None) -> TokenOut:
    refresh = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            token_hash=hash_token(refresh),
            user_id=user.id,
            family_id=family_id or str(uuid.uuid4()),
            expires_at=datetime.now(UTC) + timedelta(days=ctx.settings.refresh_token_days),
        )
    )
    return TokenOut(
        access_token=_access_token(ctx, user, await session.scalar(current_key())),
        expires_in=int(ctx.access_lifetime.total_seconds()),
        refresh_token=refresh,
    )


def throttled(seconds: float, title: str = "Too many sign-in attempts") -> Problem:
    wait = max(1, int(seconds + 0.999))
    return Problem(
        429,
        title,
        f"try again in {wait} s",
        type_="/problems/throttled",
        headers={"Retry-After": str(wait)},
    )


async def sign_in(*, session: AsyncSession, ctx: IdentityContext, email: str, password: str, address: str) -> TokenOut:
    email = email.strip().lower()
    policy = ctx.signin_policy
    wait = await throttle.admit(session, account=email, address=address, now=datetime.now(UTC), policy=policy)
    if wait:
        audit(session, "signin.throttled", subject=email, address=address)
        await session.commit()
        SIGN_INS.labels("throttled").inc()
        raise throttled(wait.total_seconds())
    user = await session.scalar(select(User).where(User.email == email))
    try:
        # Argon2 takes ~0.1 s of CPU: off the event loop, or a burst of sign-ins stalls every request.
        await asyncio.to_thread(hasher.verify, user.password_hash if user else _DUMMY_HASH, password)
        ok = user is not None and not user.disabled
    except VerificationError:
        ok = False
    if not ok:
        await throttle.record_failure(session, account=email, now=datetime.now(UTC), policy=policy)
        audit(session, "signin.failed", subject=email, address=address, disabled=bool(user and user.disabled))
        await session.commit()
        SIGN_INS.labels("failed").inc()
        raise unauthorized("wrong email or password")
    await throttle.forget(session, account=email, address=address)
    audit(session, "signin.succeeded", actor=user.id, subject=email, address=address)
    tokens = await _issue(session, ctx, user)
    await session.commit()
    SIGN_INS.labels("succeeded").inc()
    return tokens


@retry_on_conflict  # losers revoking one family at once can deadlock on PostgreSQL (40P01): run again
async def refresh(*, session: AsyncSession, ctx: IdentityContext, token: str, address: str) -> TokenOut:
    """Trade a refresh token for a new pair; a token used twice voids its whole family."""
    stored = await session.get(RefreshToken, hash_token(token))
    if stored is None:
        raise unauthorized("unknown refresh token")
    now = datetime.now(UTC)
    user = await session.get(User, stored.user_id)
    if stored.expires_at <= now or user is None or user.disabled:
        raise unauthorized("refresh token expired or user disabled")
    # The use is claimed in the database: of two requests with one token, exactly one sets `used_at`.
    claimed = await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == stored.token_hash,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        await _revoke_family(session, stored.family_id, now)
        audit(session, "refresh.reused", actor=stored.user_id, address=address, family=stored.family_id)
        await session.commit()
        raise unauthorized("refresh token already used or revoked")
    tokens = await _issue(session, ctx, user, family_id=stored.family_id)
    await session.commit()
    return tokens


@retry_on_conflict
async def logout(*, session: AsyncSession, token: str, address: str) -> None:
    stored = await session.get(RefreshToken, hash_token(token))
    if stored is not None:
        await _revoke_family(session, stored.family_id, datetime.now(UTC))
        audit(session, "token.revoked", actor=stored.user_id, address=address, reason="logout")
        await session.commit()


async def _revoke_family(session: AsyncSession, family_id: str, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def wrong_field(field: str, message: str, *, code: str = "value_error") -> RequestValidationError:
    return RequestValidationError([{"type": code, "loc": ("body", field), "msg": message}])


@retry_on_conflict
async def change_password(
    *, session: AsyncSession, ctx: IdentityContext, user_id: str, data: PasswordChange, address: str
) -> TokenOut:
    """Set a new password, the current one given; every other session ends (its tokens are voided), and this
    one goes on with the new pair of tokens returned. Wrong guesses of the current password count as failed
    sign-ins of the account (the same throttle): a stolen session cannot try every password."""
    user = await get_user(session=session, user_id=user_id)
    policy, now = ctx.signin_policy, datetime.now(UTC)
    if wait := await throttle.admit(session, account=user.email, address=address, now=now, policy=policy):
        raise throttled(wait.total_seconds())
    try:
        await asyncio.to_thread(hasher.verify, user.password_hash, data.current_password)
    except VerificationError:
        await throttle.record_failure(session, account=user.email, now=now, policy=policy)
        audit(session, "password.change_refused", actor=user.id, subject=user.id, address=address)
        await session.commit()
        raise wrong_field("current_password", "is not your current password", code="password_not_current") from None
    if weakness(data.new_password, context=[*email_words(user.email), data.current_password]):
        raise wrong_field(
            "new_password",
            "must not contain your e-mail address, name or current password",
            code="password_like_current",
        )
    user.password_hash = await asyncio.to_thread(hasher.hash, data.new_password)
    user.updated_at = now
    await void_tokens(session, ctx, user, reason="password_changed")
    audit(session, "password.changed", actor=user.id, subject=user.id, address=address)
    tokens = await _issue(session, ctx, user)
    await session.commit()
    return tokens


def email_taken(email: str) -> Problem:
    return Problem(
        409,
        "Email taken",
        f"a user with email {email!r} exists",
        type_="/problems/duplicate",
        errors=[{"field": "email", "message": "already used by another user", "type": "/problems/duplicate"}],
    )


async def create_user(*, session: AsyncSession, ctx: IdentityContext, actor: Principal, data: UserCreate) -> User:
    email = data.email.lower()
    if await session.scalar(select(User.id).where(User.email == email)):
        raise email_taken(email)
    user = User(
        id=str(uuid.uuid4()),
        email=email,
        password_hash=hasher.hash(data.password),
        roles=sorted({r.value for r in data.roles}),
        city_ids=sorted(set(data.city_ids)),
        token_version=1,
    )
    session.add(user)
    announce(session, ctx, user, UserRegistered)
    audit(session, "user.created", actor=actor.user_id, subject=user.id, roles=user.roles, cities=user.city_ids)
    try:
        await session.commit()
    except IntegrityError:
        # The same email registered at the same moment: the unique index decided.
        await session.rollback()
        if await session.scalar(select(User.id).where(User.email == email)):
            raise email_taken(email) from None
        raise
    return user


async def get_user(*, session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise not_found("user", user_id)
    return user


async def list_users(
    *, session: AsyncSession, limit: int, offset: int, role: str | None, q: str | None, disabled: bool | None
):
    """Users by e-mail; `q` is found in the name or e-mail (any case)."""
    query = select(User).order_by(User.email)
    if q:
        pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            func.lower(User.email).like(pattern, escape="\\") | func.lower(User.name).like(pattern, escape="\\")
        )
    if disabled is not None:
        query = query.where(User.disabled.is_(disabled))
    if role:
        query = query.where(User.id.in_(select(UserRole.user_id).where(UserRole.role == role)))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    return list(await session.scalars(query.limit(limit).offset(offset))), total


@retry_on_conflict
async def update_me(*, session: AsyncSession, user_id: str, data: MeUpdate) -> User:
    """A user's own name and mail language (a compare-and-set with any change of their roles made meanwhile)."""
    user = await get_user(session=session, user_id=user_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    for name, value in changes.items():
        setattr(user, name, value)
    if changes:
        user.updated_at = datetime.now(UTC)
        audit(session, "user.profile_changed", actor=user.id, subject=user.id, fields=sorted(changes))
        await session.commit()
    return user


@retry_on_conflict
async def update_user(
    *, session: AsyncSession, ctx: IdentityContext, actor: Principal, user_id: str, data: UserUpdate
) -> User:
    """Change roles, cities or `disabled`; the user's tokens stop working at once."""
    user = await get_user(session=session, user_id=user_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    # Coordinators bind officials to cities, and nothing else.
    if not actor.has_role("admin") and (set(changes) - {"city_ids"} or "official" not in user.roles):
        raise forbidden("coordinators may only change the cities of officials", allowed_fields=["city_ids"])
    if user.id == actor.user_id and ("roles" in changes or changes.get("disabled")):
        raise forbidden("you cannot change your own roles or disable yourself")
    if "roles" in changes:
        audit(
            session,
            "user.roles_changed",
            actor=actor.user_id,
            subject=user.id,
            old=user.roles,
            new=sorted({r.value for r in data.roles}),
        )
        user.roles = sorted({r.value for r in data.roles})
    if "city_ids" in changes:
        audit(
            session,
            "user.cities_changed",
            actor=actor.user_id,
            subject=user.id,
            old=user.city_ids,
            new=sorted(set(data.city_ids)),
        )
        user.city_ids = sorted(set(data.city_ids))
    if "disabled" in changes:
        audit(session, "user.disabled" if data.disabled else "user.enabled", actor=actor.user_id, subject=user.id)
        user.disabled = data.disabled
    if changes:
        user.updated_at = datetime.now(UTC)  # not re-read after commit: the answer is this change's
        await void_tokens(session, ctx, user, reason=",".join(sorted(changes)))
    if "roles" in changes or "disabled" in changes:
        announce(session, ctx, user, UserRolesChanged)
    await session.commit()
    return user


async def void_tokens(session: AsyncSession, ctx: IdentityContext, user: User, *, reason: str) -> None:
    user.token_version += 1
    now = datetime.now(UTC)
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    revoked = TokensRevoked(user_id=user.id, min_token_version=user.token_version, reason=reason)
    ctx.relay.add(session, new_event(revoked, source=SOURCE, subject=user.id))
    audit(session, "token.revoked", subject=user.id, reason=reason)


async def audit_log(*, session: AsyncSession, limit: int, offset: int, action: str | None):
    query = select(AuditEntry)
    if action:
        query = query.where(AuditEntry.action == action)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(AuditEntry.seq.desc()).limit(limit).offset(offset))
    return list(rows), total
