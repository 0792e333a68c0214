"""Events the `profiles` service publishes: each carries the whole public snapshot and its version."""

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from citypair_shared.events.envelope import EventData
from citypair_shared.themes import ThemeLevels


class CitySnapshot(BaseModel):
    """The public state of a city profile at `version` (no contacts: consumers are untrusted)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    version: int = Field(ge=1)
    name: str
    country_code: str
    latitude: float
    longitude: float
    population: int
    status: str = "published"
    themes: dict[str, ThemeLevels] = {}


class _CityEvent(EventData):
    city: CitySnapshot


class CityRegistered(_CityEvent):
    event_type: ClassVar[str] = "profiles.city.registered.v1"


class CityUpdated(_CityEvent):
    event_type: ClassVar[str] = "profiles.city.updated.v1"


class CityRetired(_CityEvent):
    event_type: ClassVar[str] = "profiles.city.retired.v1"
