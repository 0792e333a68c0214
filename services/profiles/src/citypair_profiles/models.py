from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, Integer, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from citypair_shared.db import new_metadata
from citypair_shared.outbox import OutboxMixin


class Base(DeclarativeBase):
    metadata = new_metadata()


class City(Base):
    __tablename__ = "city"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Bumped on every change; events carry it so consumers apply only newer snapshots.
    version: Mapped[int] = mapped_column(Integer, default=1)
    name: Mapped[str] = mapped_column(String(200), index=True)
    country_code: Mapped[str] = mapped_column(String(2), index=True)
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    population: Mapped[int] = mapped_column(Integer)
    themes: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="published")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"
