from pydantic import BaseModel, ConfigDict, Field, field_validator

from citypair_pilot_zones.workflow import Status
from citypair_shared.deps import Timestamp
from citypair_shared.themes import ThemeId


class ProposalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=200)
    city_ids: list[str] = Field(min_length=2, max_length=8, description="Member cities, the lead first")
    themes: list[ThemeId] = Field(default_factory=list, max_length=17)

    @field_validator("city_ids")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a city can be a member only once")
        return value


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Status
    comment: str = Field(default="", max_length=2000)


class TransitionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: str
    to_status: str
    actor_id: str
    comment: str
    at: Timestamp


class ProposalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    status: Status
    city_ids: list[str]
    themes: list[str]
    version: int
    created_at: Timestamp
    updated_at: Timestamp
    transitions: list[TransitionOut]
    allowed_transitions: list[str]
