"""What the pilot-zones API accepts and returns. Input models forbid unknown fields."""

from datetime import date
from enum import StrEnum
from typing import Annotated

import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from citypair_pilot_zones.workflow import Status
from citypair_shared.contract import URL_PATTERN, VISIBLE_TEXT_PATTERN, CalendarDate
from citypair_shared.deps import ID_PATTERN, CityId, Timestamp
from citypair_shared.themes import THEME_IDS, ThemeId

Text200 = Annotated[str, Field(min_length=1, max_length=200, pattern=VISIBLE_TEXT_PATTERN)]
Url = Annotated[str, Field(max_length=500, pattern=URL_PATTERN, examples=["https://example.org/plan.pdf"])]


def _currency(value: str) -> str:
    value = value.upper()
    if len(value) != 3 or pycountry.currencies.get(alpha_3=value) is None:
        raise PydanticCustomError("unknown_currency", "'{value}' is not an ISO 4217 currency code", {"value": value})
    return value


# The codes `_currency` takes, in the schema too (the API also takes them in lower case).
CURRENCY_CODES = sorted(currency.alpha_3 for currency in pycountry.currencies)
Currency = Annotated[
    str,
    Field(min_length=3, max_length=3, examples=["CNY"], json_schema_extra={"enum": CURRENCY_CODES}),
    AfterValidator(_currency),
]
# Lists `_distinct` checks: the schema says so.
DISTINCT = {"uniqueItems": True}


class MilestoneStatus(StrEnum):
    planned = "planned"
    in_progress = "in_progress"
    done = "done"


class ProposalBudget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: StrictFloat = Field(ge=0, le=1e15, allow_inf_nan=False)
    currency: Currency


class FundingSource(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Text200
    amount: StrictFloat | None = Field(None, ge=0, le=1e15, allow_inf_nan=False)


class ProposalActivity(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Text200
    description: str = Field("", max_length=2000)


class ProposalMilestone(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Text200
    due_date: CalendarDate
    status: MilestoneStatus = MilestoneStatus.planned
    evidence_url: Url | None = None


class ProposalKpi(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Text200
    unit: str = Field(min_length=1, max_length=50, pattern=VISIBLE_TEXT_PATTERN)
    target: StrictFloat = Field(allow_inf_nan=False)
    actual: StrictFloat | None = Field(None, allow_inf_nan=False)


class ProposalDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Text200
    url: Url


def _distinct(value: list | None) -> list | None:
    if value is not None and len(set(value)) != len(value):
        raise PydanticCustomError("listed_twice", "each may be listed only once")
    return value


class _ProposalFields(BaseModel):
    """The proposal's content: shared by the draft (POST) and the edit (PATCH)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    objectives: list[Annotated[str, Field(min_length=1, max_length=1000, pattern=VISIBLE_TEXT_PATTERN)]] | None = Field(
        None, max_length=30
    )
    activities: list[ProposalActivity] | None = Field(None, max_length=50)
    budget: ProposalBudget | None = None
    budget_public: StrictBool | None = Field(None, description="Show the budget in the open-data list")
    funding_sources: list[FundingSource] | None = Field(None, max_length=20)
    start_date: CalendarDate | None = None
    end_date: CalendarDate | None = None
    milestones: list[ProposalMilestone] | None = Field(None, max_length=50)
    kpis: list[ProposalKpi] | None = Field(None, max_length=50)
    documents: list[ProposalDocument] | None = Field(None, max_length=50)

    @field_validator("end_date")
    @classmethod
    def _ends_after_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start_date")
        if value is not None and start is not None and value < start:
            raise PydanticCustomError("end_before_start", "the end date is before the start date")
        return value


class ProposalCreate(_ProposalFields):
    title: Text200
    city_ids: list[CityId] = Field(
        min_length=2, max_length=8, description="Member cities, the lead first", json_schema_extra=DISTINCT
    )
    lead_city_id: CityId | None = Field(None, description="One of `city_ids` (default: the first)")
    themes: list[ThemeId] = Field(default_factory=list, max_length=len(THEME_IDS), json_schema_extra=DISTINCT)

    _distinct_cities = field_validator("city_ids")(_distinct)
    _distinct_themes = field_validator("themes")(_distinct)


class ProposalUpdate(_ProposalFields):
    """A partial edit: only the fields given change (send `If-Match` with the ETag you read)."""

    title: Text200 | None = None
    city_ids: list[CityId] | None = Field(None, min_length=2, max_length=8, json_schema_extra=DISTINCT)
    lead_city_id: CityId | None = None
    themes: list[ThemeId] | None = Field(None, max_length=len(THEME_IDS), json_schema_extra=DISTINCT)

    _distinct_cities = field_validator("city_ids")(_distinct)
    _distinct_themes = field_validator("themes")(_distinct)


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Status
    comment: str = Field(default="", max_length=2000)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    coordinator_id: str | None = Field(
        None,
        min_length=1,
        max_length=36,
        pattern=ID_PATTERN,
        description="The coordinator to assign (default: yourself)",
    )
    comment: str = Field(default="", max_length=2000)


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=5000)
    parent_id: str | None = Field(
        None, min_length=1, max_length=36, pattern=ID_PATTERN, description="The comment this answers"
    )
    private: StrictBool = Field(False, description="A reviewer note: only coordinators may write and see them")


class TransitionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: str
    to_status: str
    actor_id: str
    comment: str
    at: Timestamp


class ProposalMember(BaseModel):
    city_id: str
    name: str | None = Field(description="From the profile events pilot_zones has seen")
    lead: bool
    confirmed: bool
    confirmed_by: str | None = None
    confirmed_at: Timestamp | None = None


class ScoreRecord(BaseModel):
    """The match the proposal came from, as it was scored."""

    score: float
    factors: dict[str, float]
    weights_version: str
    profile_versions: dict[str, int] = {}
    themes: list[str] = []


class ProposalOut(BaseModel):
    id: str
    title: str
    status: Status
    city_ids: list[str]
    lead_city_id: str
    members: list[ProposalMember]
    themes: list[str]
    objectives: list[str]
    activities: list[ProposalActivity]
    budget: ProposalBudget | None
    budget_public: bool
    funding_sources: list[FundingSource]
    start_date: date | None
    end_date: date | None
    milestones: list[ProposalMilestone]
    overdue_milestones: list[str] = Field(description="Titles of milestones past their due date and not done")
    kpis: list[ProposalKpi]
    documents: list[ProposalDocument]
    score_record: ScoreRecord | None
    coordinator_id: str | None
    stale: bool = Field(description="Active with no activity for the stale period, or with an overdue milestone")
    stale_reasons: list[str]
    last_activity_at: Timestamp
    version: int
    created_at: Timestamp
    updated_at: Timestamp
    transitions: list[TransitionOut]
    allowed_transitions: list[str]
    editable: list[str] = Field(default_factory=list, description="The fields this user may change now (PATCH)")
    confirmable: list[str] = Field(default_factory=list, description="Member cities this user may confirm now")


class ProposalTimelineEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    version: int
    action: str = Field(description="created, created_from_match, edited, confirmed, assigned, transition, commented")
    actor_id: str | None = Field(description="None for the system (an event, the stale sweep)")
    details: dict
    at: Timestamp


class ProposalComment(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    parent_id: str | None
    author_id: str
    body: str
    private: bool
    created_at: Timestamp


class ProposalBoard(BaseModel):
    counts: dict[str, int] = Field(description="Proposals per status (every status, zeros included)")
    total: int
    stale: int
    overdue: int


class StaleSweepReport(BaseModel):
    checked: int
    flagged: list[str] = Field(description="Proposals flagged stale now (an event each)")
    cleared: list[str] = Field(description="Proposals no longer stale")


class OpenDataCity(BaseModel):
    id: str
    name: str | None
    country_code: str | None


class OpenPilotZone(BaseModel):
    """A pilot zone as open data: no contacts, no comments, the budget only if marked public."""

    id: str
    title: str
    status: str
    lead_city_id: str
    cities: list[OpenDataCity]
    themes: list[str]
    start_date: date | None
    end_date: date | None
    budget: ProposalBudget | None
