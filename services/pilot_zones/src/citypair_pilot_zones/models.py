from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from citypair_pilot_zones.workflow import OPEN
from citypair_shared.db import UtcDateTime, new_metadata
from citypair_shared.idempotency import IdempotencyMixin
from citypair_shared.inbox import InboxMixin
from citypair_shared.outbox import OutboxMixin
from citypair_shared.schedule import JobSlotMixin


class Base(DeclarativeBase):
    metadata = new_metadata()


class KnownCity(Base):
    """What pilot_zones knows of a city, from profile events: enough to check membership."""

    __tablename__ = "known_city"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    # Written `WHERE version = :read`: two replicas applying two snapshots at once cannot leave the older one
    # (the loser's batch fails, is redelivered, and then finds its snapshot not newer).
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}
    name: Mapped[str] = mapped_column(String(200))
    country_code: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(20))


class KnownUser(Base):
    """What pilot_zones knows of a user, from identity's events: whether they may be assigned to review."""

    __tablename__ = "known_user"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # As KnownCity's: applied only if newer, written `WHERE version = :read`.
    version: Mapped[int] = mapped_column(Integer)
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}
    # Has the coordinator role and is not disabled.
    coordinator: Mapped[bool] = mapped_column(Boolean)


# One open proposal per set of member cities, decided by the database (two drafts at once: one wins).
OPEN_PROPOSAL = text("status IN ({})".format(", ".join(f"'{s}'" for s in sorted(OPEN))))


class Proposal(Base):
    __tablename__ = "proposal"
    __table_args__ = (
        Index(
            "uq_proposal_open_member_key", "member_key", unique=True,
            sqlite_where=OPEN_PROPOSAL, postgresql_where=OPEN_PROPOSAL,
        ),
    )  # fmt: skip

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(30), index=True)
    city_ids: Mapped[list] = mapped_column(JSON)
    lead_city_id: Mapped[str] = mapped_column(String(36), server_default="")
    # Sorted member ids joined: finds a duplicate open proposal for the same cities.
    member_key: Mapped[str] = mapped_column(String(800), index=True)
    # city id -> {"by": user id, "at": ISO time}: a member city's officials confirmed its membership.
    confirmations: Mapped[dict] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    themes: Mapped[list] = mapped_column(JSON, default=list)
    objectives: Mapped[list] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    activities: Mapped[list] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    budget_amount: Mapped[float | None] = mapped_column(Float)
    budget_currency: Mapped[str | None] = mapped_column(String(3))
    budget_public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    funding_sources: Mapped[list] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    milestones: Mapped[list] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    # The earliest due date of a milestone not yet done (kept with `milestones`): finds overdue work in SQL.
    open_milestone_due: Mapped[date | None] = mapped_column(Date, index=True)
    kpis: Mapped[list] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    documents: Mapped[list] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    # The score record of the match the proposal came from, as it was (never recomputed).
    score_record: Mapped[dict | None] = mapped_column(JSON)
    # Sorted member ids + weights version of that match: one draft per accepted match, however often it arrives.
    match_key: Mapped[str | None] = mapped_column(String(900), unique=True)
    coordinator_id: Mapped[str | None] = mapped_column(String(36), index=True)
    last_activity_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())
    # Set when a staleness episode was flagged (and its event staged); cleared when the proposal is no longer stale.
    stale_flagged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Every UPDATE is a compare-and-set on the version (`WHERE version = :read`): see `retry_on_conflict`.
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now(), onupdate=func.now())
    transitions: Mapped[list["Transition"]] = relationship(order_by="Transition.seq", lazy="selectin")


class Transition(Base):
    """Append-only record of each workflow step."""

    __tablename__ = "transition"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposal.id"), index=True)
    from_status: Mapped[str] = mapped_column(String(30))
    to_status: Mapped[str] = mapped_column(String(30))
    actor_id: Mapped[str] = mapped_column(String(36))
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())


class TimelineEntry(Base):
    """The append-only audit log of a proposal: every change, confirmation, assignment and transition."""

    __tablename__ = "timeline_entry"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposal.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[str | None] = mapped_column(String(36))
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    # Entries about private reviewer notes are shown to coordinators only.
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())


class Comment(Base):
    """A threaded comment; `private` ones are reviewer notes that only coordinators see."""

    __tablename__ = "comment"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposal.id"), index=True)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("comment.id"))
    author_id: Mapped[str] = mapped_column(String(36))
    body: Mapped[str] = mapped_column(Text)
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class Inbox(InboxMixin, Base):
    __tablename__ = "inbox"


class JobSlot(JobSlotMixin, Base):
    __tablename__ = "job_slot"


class IdempotencyRecord(IdempotencyMixin, Base):
    __tablename__ = "idempotency_record"
