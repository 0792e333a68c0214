"""What the profiles API accepts and returns. Input models forbid unknown fields."""

from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Annotated
from zoneinfo import available_timezones

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from citypair_shared.events.profiles import Indicator
from citypair_shared.geography import CORRIDORS, INDICATORS
from citypair_shared.themes import ThemeId

Corridor = StrEnum("Corridor", {c: c for c in CORRIDORS})
IndicatorKey = StrEnum("IndicatorKey", {k: k for k in INDICATORS})


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _country(value: str) -> str:
    value = value.upper()
    if pycountry.countries.get(alpha_2=value) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return value


def _language(value: str) -> str:
    value = value.lower()
    if len(value) != 2 or pycountry.languages.get(alpha_2=value) is None:
        raise ValueError(f"{value!r} is not an ISO 639-1 language code")
    return value


def _timezone(value: str) -> str:
    if value not in _timezones():
        raise ValueError(f"{value!r} is not an IANA time zone")
    return value


CountryCode = Annotated[str, Field(min_length=2, max_length=2, examples=["CN"]), AfterValidator(_country)]
LanguageCode = Annotated[str, Field(min_length=2, max_length=2, examples=["zh"]), AfterValidator(_language)]
TimeZone = Annotated[str, Field(max_length=64, examples=["Asia/Shanghai"]), AfterValidator(_timezone)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class ThemeEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    offer: int = Field(0, ge=0, le=5, description="What the city can share, 0–5")
    need: int = Field(0, ge=0, le=5, description="What the city seeks, 0–5")
    notes: str = Field("", max_length=2000)
    key_projects: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=20)


class IndicatorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: float = Field(allow_inf_nan=False)
    year: int = Field(ge=1990, le=2100)


class Contacts(BaseModel):
    """Shown only to the city's officials, coordinators and admins; never in lists or events."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    office: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(None, max_length=40, pattern=r"^[0-9+()\-. ]{3,40}$")
    website: str | None = Field(None, max_length=300, pattern=r"^https?://\S+$")


class CityFields(BaseModel):
    """Every editable field of a profile (PUT takes them all)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name = Field(examples=["Xi'an"])
    local_name: str | None = Field(None, max_length=200, examples=["西安"])
    alternate_names: list[Name] = Field(default_factory=list, max_length=100)
    country_code: CountryCode
    admin_region: str | None = Field(None, max_length=200)
    latitude: float = Field(ge=-90, le=90, examples=[34.26])
    longitude: float = Field(ge=-180, le=180, examples=[108.93])
    population: int = Field(ge=0, le=100_000_000, examples=[12_900_000])
    timezone: TimeZone | None = None
    geonames_id: int | None = Field(None, ge=1, le=2_000_000_000)
    external_id: str | None = Field(None, min_length=1, max_length=100, description="Your id, for idempotent imports")
    themes: dict[ThemeId, ThemeEntry] = Field(default_factory=dict, description="Offer and need levels per theme")
    indicators: dict[IndicatorKey, IndicatorIn] = Field(default_factory=dict)
    languages: list[LanguageCode] = Field(default_factory=list, max_length=20)
    corridors: list[Corridor] = Field(default_factory=list, max_length=7)
    capacity: int = Field(5, ge=0, le=100, description="How many active partnerships the city can carry")
    preferred_countries: list[CountryCode] = Field(default_factory=list, max_length=50)
    excluded_countries: list[CountryCode] = Field(default_factory=list, max_length=50)
    contacts: Contacts = Field(default_factory=Contacts)
    demo: bool = Field(False, description="Theme levels and indicators are generated demo data, not facts")

    @model_validator(mode="after")
    def _indicators_in_range(self):
        for key, indicator in self.indicators.items():
            _, _, low, high = INDICATORS[key]
            if not low <= indicator.value <= high:
                raise ValueError(f"indicators.{key}.value must be within {low}–{high}")
        return self


class CityCreate(CityFields):
    draft: bool = Field(False, description="Save as a draft (not yet visible to matching)")


class CityUpdate(BaseModel):
    """A partial update: only the fields given change."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name | None = None
    local_name: str | None = Field(None, max_length=200)
    alternate_names: list[Name] | None = Field(None, max_length=100)
    admin_region: str | None = Field(None, max_length=200)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    population: int | None = Field(None, ge=0, le=100_000_000)
    timezone: TimeZone | None = None
    themes: dict[ThemeId, ThemeEntry] | None = None
    indicators: dict[IndicatorKey, IndicatorIn] | None = None
    languages: list[LanguageCode] | None = Field(None, max_length=20)
    corridors: list[Corridor] | None = Field(None, max_length=7)
    capacity: int | None = Field(None, ge=0, le=100)
    preferred_countries: list[CountryCode] | None = Field(None, max_length=50)
    excluded_countries: list[CountryCode] | None = Field(None, max_length=50)
    contacts: Contacts | None = None


class CityOut(BaseModel):
    id: str
    version: int
    name: str
    local_name: str | None
    alternate_names: list[str]
    country_code: str
    admin_region: str | None
    latitude: float
    longitude: float
    population: int
    timezone: str | None
    geonames_id: int | None
    external_id: str | None
    themes: dict[str, ThemeEntry]
    indicators: dict[str, Indicator]
    languages: list[str]
    corridors: list[str]
    capacity: int
    preferred_countries: list[str]
    excluded_countries: list[str]
    partner_ids: list[str]
    contacts: Contacts | None = Field(None, description="Only for the city's officials, coordinators and admins")
    status: str
    verified: bool
    verified_by: str | None
    verified_at: datetime | None
    demo: bool
    last_confirmed_at: datetime
    stale: bool = Field(description="Not confirmed for 12 months")
    created_at: datetime
    updated_at: datetime


class ChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    action: str
    actor_id: str | None
    changes: dict
    at: datetime


class ImportRowError(BaseModel):
    field: str
    message: str


class ImportRow(BaseModel):
    line: int = Field(description="CSV line (header is line 1) or JSON array position (from 1)")
    id: str | None = None
    action: str = Field(description="created, updated, or rejected")
    errors: list[ImportRowError] = []


class ImportReport(BaseModel):
    accepted: int
    rejected: int
    all_or_nothing: bool
    committed: bool
    rows: list[ImportRow]


class PartnershipReport(BaseModel):
    rows: int
    matched: int
    created: int
    unmatched: int
    unmatched_rows: list[dict] = Field(description="First 200 rows no profile matched, with the reason")


class SortKey(StrEnum):
    name = "name"
    name_desc = "-name"
    population = "population"
    population_desc = "-population"
    updated = "updated_at"
    updated_desc = "-updated_at"
    country = "country_code"
