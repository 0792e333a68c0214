from datetime import datetime

from sqlalchemy import JSON, Float, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from citypair_shared.db import UtcDateTime, new_metadata
from citypair_shared.idempotency import IdempotencyMixin
from citypair_shared.inbox import InboxMixin
from citypair_shared.outbox import OutboxMixin


class Base(DeclarativeBase):
    metadata = new_metadata()


class CityProjection(Base):
    """The public snapshot of a city as last published by `profiles` (whole, as the event carried it)."""

    __tablename__ = "city_projection"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    # Written `WHERE version = :read`: two replicas applying two snapshots at once cannot leave the older one
    # (the loser's batch fails, is redelivered, and then finds its snapshot not newer).
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}
    status: Mapped[str] = mapped_column(String(20))
    snapshot: Mapped[dict] = mapped_column(JSON)


class Partnership(Base):
    """An existing partnership (an edge of the partnership graph); `city_a` < `city_b`."""

    __tablename__ = "partnership"

    city_a: Mapped[str] = mapped_column(String(36), primary_key=True)
    city_b: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    reference: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class Inbox(InboxMixin, Base):
    __tablename__ = "inbox"


class IdempotencyRecord(IdempotencyMixin, Base):
    __tablename__ = "idempotency_record"


class MatchDecision(Base):
    """One city's decision on a pair (`city_a` < `city_b`); kept, never overwritten (the weights report reads them)."""

    __tablename__ = "match_decision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    city_a: Mapped[str] = mapped_column(String(36), index=True)
    city_b: Mapped[str] = mapped_column(String(36), index=True)
    city_id: Mapped[str] = mapped_column(String(36))
    decision: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(36))
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())
    score: Mapped[float] = mapped_column(Float)
    weights_version: Mapped[str] = mapped_column(String(40))
    record: Mapped[dict] = mapped_column(JSON)


class MatchPair(Base):
    """A pair that has decisions (`city_a` < `city_b`). Each decision locks this row first (by counting itself
    in), so two officials deciding at once are ordered by the database and the second sees the first."""

    __tablename__ = "match_pair"

    city_a: Mapped[str] = mapped_column(String(36), primary_key=True)
    city_b: Mapped[str] = mapped_column(String(36), primary_key=True)
    decisions: Mapped[int] = mapped_column(Integer, default=0)


class MatchRound(Base):
    """A programme round: what was asked, and the pairing it produced."""

    __tablename__ = "match_round"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())
    request: Mapped[dict] = mapped_column(JSON)
    pairs: Mapped[list] = mapped_column(JSON)
    unmatched: Mapped[list] = mapped_column(JSON)
    total_score: Mapped[float] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(80))
    weights_version: Mapped[str] = mapped_column(String(40))
    # Set once, by the one publish that finds it empty (UPDATE ... WHERE published_at IS NULL).
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    published_by: Mapped[str | None] = mapped_column(String(36))
