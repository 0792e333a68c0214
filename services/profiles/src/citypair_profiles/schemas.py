"""What the profiles API accepts and returns. Input models forbid unknown fields."""

from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Annotated
from zoneinfo import available_timezones

import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    model_validator,
)
from pydantic_core import PydanticCustomError

from citypair_shared.contract import EMAIL_PATTERN, URL_PATTERN, VISIBLE_TEXT_PATTERN, json_integer
from citypair_shared.events.profiles import Indicator
from citypair_shared.geography import INDICATORS, Corridor
from citypair_shared.themes import ThemeId
from citypair_shared.upload import ImportReport, ImportRow  # noqa: F401 - an import's report, as every import's

IndicatorKey = StrEnum("IndicatorKey", {k: k for k in INDICATORS})


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _country(value: str) -> str:
    value = value.upper()
    if pycountry.countries.get(alpha_2=value) is None:
        raise PydanticCustomError(
            "unknown_country", "'{value}' is not an ISO 3166-1 alpha-2 country code", {"value": value}
        )
    return value


def _language(value: str) -> str:
    value = value.lower()
    if len(value) != 2 or pycountry.languages.get(alpha_2=value) is None:
        raise PydanticCustomError("unknown_language", "'{value}' is not an ISO 639-1 language code", {"value": value})
    return value


def _timezone(value: str) -> str:
    if value not in _timezones():
        raise PydanticCustomError("unknown_time_zone", "'{value}' is not an IANA time zone", {"value": value})
    return value


# The lists the validators check against, in the schema too (the API also takes the codes in lower case).
COUNTRY_CODES = sorted(country.alpha_2 for country in pycountry.countries)
LANGUAGE_CODES = sorted(language.alpha_2 for language in pycountry.languages if hasattr(language, "alpha_2"))
CountryCode = Annotated[
    str,
    Field(min_length=2, max_length=2, examples=["CN"], json_schema_extra={"enum": COUNTRY_CODES}),
    AfterValidator(_country),
]
LanguageCode = Annotated[
    str,
    Field(min_length=2, max_length=2, examples=["zh"], json_schema_extra={"enum": LANGUAGE_CODES}),
    AfterValidator(_language),
]
TimeZone = Annotated[
    str,
    Field(max_length=64, examples=["Asia/Shanghai"], json_schema_extra={"enum": sorted(_timezones())}),
    AfterValidator(_timezone),
]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=VISIBLE_TEXT_PATTERN)]


def _check_indicator_ranges(indicators: dict | None) -> None:
    for key, indicator in (indicators or {}).items():
        _, _, low, high = INDICATORS[key]
        if not low <= indicator.value <= high:
            raise PydanticCustomError(
                "indicator_out_of_range",
                "indicators.{indicator}.value must be within {low}–{high}",
                {"indicator": str(key), "low": low, "high": high},
            )


# Each indicator's own range (`_check_indicator_ranges`), stated per key in the schema.
INDICATORS_SCHEMA = {
    "properties": {
        key: {
            "type": "object",
            "properties": {
                "value": {"type": "number", "minimum": low, "maximum": high},
                "year": {"type": "integer", "minimum": 1990, "maximum": 2100},
            },
            "required": ["value", "year"],
            "additionalProperties": False,
        }
        for key, (_, _, low, high) in INDICATORS.items()
    }
}


class ThemeEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    offer: json_integer(ge=0, le=5) = Field(0, description="What the city can share, 0–5")
    need: json_integer(ge=0, le=5) = Field(0, description="What the city seeks, 0–5")
    notes: str = Field("", max_length=2000)
    key_projects: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=20)


class IndicatorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: StrictFloat = Field(allow_inf_nan=False)
    year: json_integer(ge=1990, le=2100)


class Contacts(BaseModel):
    """Shown only to the city's officials, coordinators and admins; never in lists or events."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    office: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=254, pattern=EMAIL_PATTERN)
    phone: str | None = Field(None, max_length=40, pattern=r"^[0-9+()\-. ]{3,40}$")
    website: str | None = Field(None, max_length=300, pattern=URL_PATTERN)


class CityFields(BaseModel):
    """Every editable field of a profile (PUT takes them all)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name = Field(examples=["Xi'an"])
    local_name: str | None = Field(None, max_length=200, examples=["西安"])
    alternate_names: list[Name] = Field(default_factory=list, max_length=100)
    country_code: CountryCode
    admin_region: str | None = Field(None, max_length=200)
    latitude: StrictFloat = Field(ge=-90, le=90, examples=[34.26])
    longitude: StrictFloat = Field(ge=-180, le=180, examples=[108.93])
    population: json_integer(ge=0, le=100_000_000) = Field(examples=[12_900_000])
    timezone: TimeZone | None = None
    geonames_id: json_integer(ge=1, le=2_000_000_000) | None = None
    external_id: str | None = Field(
        None, min_length=1, max_length=100, pattern=VISIBLE_TEXT_PATTERN, description="Your id, for idempotent imports"
    )
    themes: dict[ThemeId, ThemeEntry] = Field(default_factory=dict, description="Offer and need levels per theme")
    indicators: dict[IndicatorKey, IndicatorIn] = Field(default_factory=dict, json_schema_extra=INDICATORS_SCHEMA)
    languages: list[LanguageCode] = Field(default_factory=list, max_length=20)
    corridors: list[Corridor] = Field(default_factory=list, max_length=7)
    capacity: json_integer(ge=0, le=100) = Field(5, description="How many active partnerships the city can carry")
    preferred_countries: list[CountryCode] = Field(default_factory=list, max_length=50)
    excluded_countries: list[CountryCode] = Field(default_factory=list, max_length=50)
    contacts: Contacts = Field(default_factory=Contacts)
    demo: StrictBool = Field(False, description="Theme levels and indicators are generated demo data, not facts")

    @model_validator(mode="after")
    def _indicators_in_range(self):
        _check_indicator_ranges(self.indicators)
        return self


class CityCreate(CityFields):
    draft: StrictBool = Field(False, description="Save as a draft (not yet visible to matching)")


# The fields a city may publish as open data (`public_fields`): any of the profile's but its name and country (always
# public), its contacts and its external id (never: the same two that events leave out).
PublicField = StrEnum(
    "PublicField",
    {
        f: f
        for f in (
            "local_name",
            "alternate_names",
            "admin_region",
            "latitude",
            "longitude",
            "population",
            "timezone",
            "geonames_id",
            "themes",
            "indicators",
            "languages",
            "corridors",
            "capacity",
            "preferred_countries",
            "excluded_countries",
            "demo",
            "partner_ids",
        )
    },
)
NEVER_PUBLIC = frozenset({"contacts", "external_id"})


def _not_private(value):
    if isinstance(value, str) and (value in NEVER_PUBLIC or value.startswith("contact")):
        raise PydanticCustomError("never_public", "{value} is never public", {"value": value})
    return value


PublicFieldName = Annotated[PublicField, BeforeValidator(_not_private)]


class CityUpdate(BaseModel):
    """A partial update: only the fields given change."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name | None = None
    local_name: str | None = Field(None, max_length=200)
    alternate_names: list[Name] | None = Field(None, max_length=100)
    admin_region: str | None = Field(None, max_length=200)
    latitude: StrictFloat | None = Field(None, ge=-90, le=90)
    longitude: StrictFloat | None = Field(None, ge=-180, le=180)
    population: json_integer(ge=0, le=100_000_000) | None = None
    timezone: TimeZone | None = None
    themes: dict[ThemeId, ThemeEntry] | None = None
    indicators: dict[IndicatorKey, IndicatorIn] | None = Field(None, json_schema_extra=INDICATORS_SCHEMA)
    languages: list[LanguageCode] | None = Field(None, max_length=20)
    corridors: list[Corridor] | None = Field(None, max_length=7)
    capacity: json_integer(ge=0, le=100) | None = None
    preferred_countries: list[CountryCode] | None = Field(None, max_length=50)
    excluded_countries: list[CountryCode] | None = Field(None, max_length=50)
    contacts: Contacts | None = None
    public_fields: list[PublicFieldName] | None = Field(
        None,
        max_length=len(PublicField),
        description="Fields published as open data besides id, name and country (the city's officials and admins)",
    )

    @model_validator(mode="after")
    def _indicators_in_range(self):
        # Checked here, as for a new profile: a wrong value is a 422 before any If-Match is looked at.
        _check_indicator_ranges(self.indicators)
        return self


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
    public_fields: list[str] = Field(description="Fields the city publishes as open data besides id, name, country")
    status: str
    verified: bool
    verified_by: str | None
    verified_at: datetime | None
    demo: bool
    last_confirmed_at: datetime
    stale: bool = Field(description="Not confirmed for 12 months")
    created_at: datetime
    updated_at: datetime


class OpenCity(BaseModel):
    """A published city as open data: id, name and country, and only the fields the city made public."""

    id: str
    name: str
    country_code: str
    local_name: str | None = None
    alternate_names: list[str] | None = None
    admin_region: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    population: int | None = None
    timezone: str | None = None
    geonames_id: int | None = None
    themes: dict[str, ThemeEntry] | None = None
    indicators: dict[str, Indicator] | None = None
    languages: list[str] | None = None
    corridors: list[str] | None = None
    capacity: int | None = None
    preferred_countries: list[str] | None = None
    excluded_countries: list[str] | None = None
    demo: bool | None = None
    partner_ids: list[str] | None = Field(None, description="Its partners among the published cities")


class CityPoint(BaseModel):
    """A published city as a map draws it: place, theme levels (those above 0), corridors and partners."""

    id: str
    name: str
    country_code: str
    latitude: float
    longitude: float
    offers: dict[str, int] = Field(description="Theme -> what the city offers, 1–5 (themes at 0 left out)")
    needs: dict[str, int] = Field(description="Theme -> what the city needs, 1–5 (themes at 0 left out)")
    corridors: list[str]
    partner_ids: list[str]


class ChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    action: str
    actor_id: str | None
    changes: dict
    at: datetime


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
