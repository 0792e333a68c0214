"""The cooperation-theme taxonomy, from the 2017 Digital Economy International Cooperation Initiative."""

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

THEMES: dict[str, str] = {
    "broadband": "Broadband and information infrastructure",
    "smart_city": "Smart cities",
    "ecommerce": "Cross-border e-commerce, customs, payments, warehousing",
    "telemedicine": "Telemedicine",
    "internet_plus": "Internet Plus: digital transformation of agriculture, manufacturing, services",
    "iot": "Internet of Things",
    "ai": "Artificial intelligence",
    "innovation": "Internet entrepreneurship and RDI",
    "msme": "Micro, small and medium enterprises",
    "digital_skills": "Digital skills",
    "ict_investment": "ICT investment, incl. public-private partnership",
    "digital_inclusion": "Digital inclusion",
    "open_data": "Transparent policy, open government data, online procurement",
    "standards": "Standards",
    "cybersecurity": "Trust, privacy, data protection",
    "culture_exchange": "Digital content and people-to-people exchange",
    "logistics": "International transport and logistics",
}
THEME_IDS = tuple(THEMES)

Level = Annotated[int, Field(ge=0, le=5)]


class ThemeLevels(BaseModel):
    """What a city can share (`offer`) and seeks (`need`) in one theme, 0–5."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    offer: Level = 0
    need: Level = 0


ThemeId = StrEnum("ThemeId", {t: t for t in THEME_IDS})
