"""Events the `profiles` service publishes: each carries the whole public snapshot and its version.

Public means what anyone signed in may read: never contacts.
"""

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from citypair_shared.events.envelope import EventData
from citypair_shared.themes import ThemeLevels


class Indicator(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float
    unit: str
    year: int = Field(ge=1990, le=2100)


class CitySnapshot(BaseModel):
    """The public state of a city profile at `version`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    version: int = Field(ge=1)
    name: str
    local_name: str | None = None
    alternate_names: list[str] = []
    country_code: str
    admin_region: str | None = None
    latitude: float
    longitude: float
    population: int
    timezone: str | None = None
    geonames_id: int | None = None
    status: str = "published"
    verified: bool = False
    demo: bool = False
    themes: dict[str, ThemeLevels] = {}
    indicators: dict[str, Indicator] = {}
    languages: list[str] = []
    corridors: list[str] = []
    capacity: int = 5
    preferred_countries: list[str] = []
    excluded_countries: list[str] = []
    partner_ids: list[str] = []
    last_confirmed_at: datetime | None = None


class _CityEvent(EventData):
    city: CitySnapshot


class CityRegistered(_CityEvent):
    event_type: ClassVar[str] = "profiles.city.registered.v1"


class CityUpdated(_CityEvent):
    event_type: ClassVar[str] = "profiles.city.updated.v1"


class CityRetired(_CityEvent):
    event_type: ClassVar[str] = "profiles.city.retired.v1"
