from datetime import datetime

import pycountry
from pydantic import BaseModel, ConfigDict, Field, field_validator

from citypair_shared.themes import ThemeId, ThemeLevels


class CityCreate(BaseModel):
    """A new city profile (the minimal form; the profiles issue widens it)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200, examples=["Xi'an"])
    country_code: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2", examples=["CN"])
    latitude: float = Field(ge=-90, le=90, examples=[34.26])
    longitude: float = Field(ge=-180, le=180, examples=[108.93])
    population: int = Field(ge=0, le=100_000_000, examples=[12_900_000])
    themes: dict[ThemeId, ThemeLevels] = Field(default_factory=dict, description="Offer and need levels 0–5 per theme")

    @field_validator("country_code")
    @classmethod
    def _known_country(cls, value: str) -> str:
        value = value.upper()
        if pycountry.countries.get(alpha_2=value) is None:
            raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
        return value


class CityUpdate(BaseModel):
    """A partial update: only the fields given change (the profiles issue widens it)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(None, min_length=1, max_length=200)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    population: int | None = Field(None, ge=0, le=100_000_000)
    themes: dict[ThemeId, ThemeLevels] | None = None


class CityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    version: int
    name: str
    country_code: str
    latitude: float
    longitude: float
    population: int
    themes: dict[str, ThemeLevels]
    status: str
    created_at: datetime
    updated_at: datetime
