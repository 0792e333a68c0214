from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    delete,
    event,
    func,
    insert,
    inspect,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column

from citypair_shared.db import UtcDateTime, new_metadata
from citypair_shared.idempotency import IdempotencyMixin
from citypair_shared.inbox import InboxMixin
from citypair_shared.outbox import OutboxMixin
from citypair_shared.schedule import JobSlotMixin


class Base(DeclarativeBase):
    metadata = new_metadata()


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list] = mapped_column(JSON, default=list)
    city_ids: Mapped[list] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # Of the mails the user gets (mail.LANGUAGES).
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    # Bumped whenever roles, cities or `disabled` change: older access tokens stop working.
    token_version: Mapped[int] = mapped_column(Integer, default=1)
    # …and every UPDATE of the user is a compare-and-set on it: two admins' changes never merge silently.
    __mapper_args__ = {"version_id_col": token_version, "version_id_generator": False}
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now(), onupdate=func.now())


class UserCity(Base):
    """`User.city_ids` as rows, kept by `_index_user`: the officials of a city are found by an index, not by
    reading every user (each city and suggestion event asks who is concerned)."""

    __tablename__ = "user_city"

    city_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)


class UserRole(Base):
    """`User.roles` as rows, kept by `_index_user`: the coordinators, or a page of users of one role, in SQL."""

    __tablename__ = "user_role"

    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)


@event.listens_for(User, "after_insert")
@event.listens_for(User, "after_update")
def _index_user(mapper: Mapper, connection: Connection, user: User) -> None:
    """Rewrite the user's rows in `user_city` and `user_role` in the flush that writes their lists, wherever the
    lists were set (a new user, an accepted invitation, an admin's change)."""
    state = inspect(user)
    for attribute, table, column in (("city_ids", UserCity, "city_id"), ("roles", UserRole, "role")):
        if state.attrs[attribute].history.has_changes():
            connection.execute(delete(table).where(table.user_id == user.id))
            if values := sorted(set(getattr(user, attribute))):
                connection.execute(insert(table), [{"user_id": user.id, column: value} for value in values])


class RefreshToken(Base):
    """A refresh token, stored as its SHA-256; each use replaces it (rotation) within its family."""

    __tablename__ = "refresh_token"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), index=True)
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())


class SigningKey(Base):
    """An Ed25519 key pair; the newest unretired one signs, all recent ones are in the JWKS."""

    __tablename__ = "signing_key"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class AuditEntry(Base):
    """The security audit log: append-only."""

    __tablename__ = "audit_entry"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now(), index=True)
    action: Mapped[str] = mapped_column(String(60), index=True)
    actor_id: Mapped[str | None] = mapped_column(String(36))
    subject: Mapped[str | None] = mapped_column(String(254))
    address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class SigninCounter(Base):
    """A sign-in throttle counter (throttle.py), in the database so that every replica shares it: attempts on an
    account from one address, attempts from an address on any account (`account` empty), or an account's
    failures from every address (`address` empty)."""

    __tablename__ = "signin_counter"

    account: Mapped[str] = mapped_column(String(254), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    last_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Forgotten from then on (and pruned).
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class Notification(Base):
    """Something a user should know about, made from the events of the other services."""

    __tablename__ = "notification"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(120))
    title: Mapped[str] = mapped_column(String(300))
    link: Mapped[str] = mapped_column(String(300), default="")
    event_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now(), index=True)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Which of the user's mail preferences it falls under (preferences.KINDS), and when the mail side was done
    # with it: mailed at once, put in a digest, or passed over (its kind was off).
    mail_kind: Mapped[str] = mapped_column(String(40), default="", server_default="")
    mailed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)


class Invitation(Base):
    """An invitation to become a user: its link's token is stored as its SHA-256 and works once, until it expires."""

    __tablename__ = "invitation"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    roles: Mapped[list] = mapped_column(JSON, default=list)
    city_ids: Mapped[list] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(String(8), default="en")
    invited_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class PasswordReset(Base):
    """A password reset link: its token stored as its SHA-256, usable once, until it expires."""

    __tablename__ = "password_reset"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    # The admin who forced it, or none (the user asked).
    forced_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class MailPreference(Base):
    """How a user wants each kind of notification mailed (preferences.KINDS -> immediate, digest or off); no row:
    the defaults."""

    __tablename__ = "mail_preference"

    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    notifications: Mapped[dict] = mapped_column(JSON, default=dict)
    suggestion_min_score: Mapped[float] = mapped_column(Float)


class MailOutbox(Base):
    """A mail to send, written in the transaction of the change it tells of; sent at least once by mail.MailSender.

    `key` names what the mail is for (an invitation, a notification, a user's digest of a day): unique, so one
    thing never makes two mails. The body is blanked once sent (a reset link must not outlive its mail here)."""

    __tablename__ = "mail_outbox"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)


class JobSlot(JobSlotMixin, Base):
    __tablename__ = "job_slot"


class Inbox(InboxMixin, Base):
    __tablename__ = "inbox"


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class IdempotencyRecord(IdempotencyMixin, Base):
    __tablename__ = "idempotency_record"
