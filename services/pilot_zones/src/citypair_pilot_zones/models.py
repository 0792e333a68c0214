from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from citypair_shared.db import UtcDateTime, new_metadata
from citypair_shared.inbox import InboxMixin
from citypair_shared.outbox import OutboxMixin


class Base(DeclarativeBase):
    metadata = new_metadata()


class KnownCity(Base):
    """What pilot_zones knows of a city, from profile events: enough to check membership."""

    __tablename__ = "known_city"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    country_code: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(20))


class Proposal(Base):
    __tablename__ = "proposal"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(30), index=True)
    city_ids: Mapped[list] = mapped_column(JSON)
    # Sorted member ids joined: finds a duplicate open proposal for the same cities.
    member_key: Mapped[str] = mapped_column(String(800), index=True)
    themes: Mapped[list] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
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


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class Inbox(InboxMixin, Base):
    __tablename__ = "inbox"
