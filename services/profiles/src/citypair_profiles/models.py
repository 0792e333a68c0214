from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from citypair_shared.db import UtcDateTime, new_metadata
from citypair_shared.idempotency import IdempotencyMixin
from citypair_shared.outbox import OutboxMixin


class Base(DeclarativeBase):
    metadata = new_metadata()


class City(Base):
    __tablename__ = "city"
    # The map's list and the directory page: published cities in name order, a range of this index (at 25,000 on
    # SQLite, 8.7 → 0.25 ms a page: with the status index alone, every published city was sorted for each page).
    __table_args__ = (
        Index("ix_city_status_name", "status", "name"),
        # The directory's `q`: names searched in an index of their own, narrow where the table's rows are wide, and
        # in name order (at 60,000 cities on SQLite: 57 → 20 ms for a count and a page).
        Index("ix_city_name_search", "name", "id", "search_text"),
        # The directory by country, in name order: a range of this index (at 60,000 cities on SQLite, a country's
        # 3,800 cities were read whole and sorted for each page).
        Index("ix_city_country_name", "country_code", "name", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Bumped on every change; events carry it so consumers apply only newer snapshots. Every UPDATE is a
    # compare-and-set on it (`WHERE version = :read`), so no two changes share a version (`retry_on_conflict`).
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    geonames_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    local_name: Mapped[str | None] = mapped_column(String(200))
    alternate_names: Mapped[list] = mapped_column(JSON, default=list)
    # Every name folded for search (case, accents, apostrophes), so "xian" finds Xi’an and 西安 finds 西安.
    search_text: Mapped[str] = mapped_column(Text, default="")
    country_code: Mapped[str] = mapped_column(String(2))
    admin_region: Mapped[str | None] = mapped_column(String(200))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    population: Mapped[int] = mapped_column(Integer, index=True)
    timezone: Mapped[str | None] = mapped_column(String(64))
    indicators: Mapped[dict] = mapped_column(JSON, default=dict)
    languages: Mapped[list] = mapped_column(JSON, default=list)
    capacity: Mapped[int] = mapped_column(Integer, default=5)
    preferred_countries: Mapped[list] = mapped_column(JSON, default=list)
    excluded_countries: Mapped[list] = mapped_column(JSON, default=list)
    contacts: Mapped[dict] = mapped_column(JSON, default=dict)
    # The fields the city's officials chose to publish as open data (besides id, name and country).
    public_fields: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="published", index=True)
    verified: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    verified_by: Mapped[str | None] = mapped_column(String(36))
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Theme levels and indicators generated for the demo, not real data.
    demo: Mapped[bool] = mapped_column(Boolean, default=False)
    last_confirmed_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), server_default=func.now(), onupdate=func.now(), index=True
    )

    themes: Mapped[list["CityTheme"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="CityTheme.theme"
    )
    corridors: Mapped[list["CityCorridor"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="CityCorridor.corridor"
    )


class CityTheme(Base):
    """One cooperation theme of a city: what it offers and needs (0–5), with notes."""

    __tablename__ = "city_theme"
    # The directory's `offers=ai:3` filter: the cities at a level or above, read from the index alone.
    __table_args__ = (
        Index("ix_city_theme_theme_offer", "theme", "offer", "city_id"),
        Index("ix_city_theme_theme_need", "theme", "need", "city_id"),
    )

    city_id: Mapped[str] = mapped_column(ForeignKey("city.id", ondelete="CASCADE"), primary_key=True)
    theme: Mapped[str] = mapped_column(String(40), primary_key=True)
    offer: Mapped[int] = mapped_column(Integer, default=0)
    need: Mapped[int] = mapped_column(Integer, default=0)
    notes: Mapped[str] = mapped_column(Text, default="")
    key_projects: Mapped[list] = mapped_column(JSON, default=list)


class CityCorridor(Base):
    __tablename__ = "city_corridor"

    city_id: Mapped[str] = mapped_column(ForeignKey("city.id", ondelete="CASCADE"), primary_key=True)
    corridor: Mapped[str] = mapped_column(String(60), primary_key=True, index=True)


class Partnership(Base):
    """An existing partnership between two profiles (`city_a` < `city_b`), e.g. a real twin-city pair."""

    __tablename__ = "partnership"

    city_a: Mapped[str] = mapped_column(ForeignKey("city.id", ondelete="CASCADE"), primary_key=True)
    city_b: Mapped[str] = mapped_column(ForeignKey("city.id", ondelete="CASCADE"), primary_key=True, index=True)
    source: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())


class CityChange(Base):
    """The history of a profile: who changed which fields when, old → new. Append-only."""

    __tablename__ = "city_change"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    city_id: Mapped[str] = mapped_column(ForeignKey("city.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(30))
    actor_id: Mapped[str | None] = mapped_column(String(36))
    changes: Mapped[dict] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class IdempotencyRecord(IdempotencyMixin, Base):
    __tablename__ = "idempotency_record"
