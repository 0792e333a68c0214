from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, TypeAdapter

from citypair_matching.explain import DETAILS
from citypair_shared.contract import json_integer
from citypair_shared.deps import Timestamp
from citypair_shared.geography import Corridor
from citypair_shared.vocabulary import AcceptReason, Decision, DeclineReason, MatchStatus, UnmatchedReason


class ThemeFlowOut(BaseModel):
    theme: str
    giver: str
    offer: int
    taker: str
    need: int
    text: str = Field(description='e.g. "Xi\'an offers ai at 5, Almaty needs it at 4"')


class PartnerOut(BaseModel):
    city_id: str
    name: str
    country_code: str
    score: float = Field(description="The sum of `contributions`")
    gain_to_city: float = Field(description="Share of the city's needs this partner meets")
    gain_to_partner: float = Field(description="Share of the partner's needs the city meets")
    contributions: dict[str, float] = Field(description="Each factor's weight × value")
    themes_to_city: list[ThemeFlowOut]
    themes_to_partner: list[ThemeFlowOut]
    constraints_passed: list[str]


class RulesOut(BaseModel):
    allow_same_country: bool
    min_population: int
    required_theme: str | None


class PartnersOut(BaseModel):
    city_id: str
    weights_version: str
    weights: dict[str, float]
    rules: RulesOut
    city_constraints: list["CheckOut"] = Field(description="Constraints on the city itself (capacity, eligibility)")
    items: list[PartnerOut]


class CheckOut(BaseModel):
    name: str
    passed: bool
    detail: str = Field(description="Why, in English")
    code: Literal[tuple(DETAILS)] = Field(
        description="Which sentence `detail` is, for a client that says it in another language"
    )
    params: dict[str, Any] = Field(
        description="The values the sentence names: city names (`city*`), a city's status (`status*`), a theme, "
        "ISO 3166-1 country codes (`country_*`; lists of them in `countries_*`), an ISO date, numbers; for "
        "`ineligible`, `failures`: the rules the cities fail, each a `{code, params}`"
    )


class DecisionState(BaseModel):
    city_id: str
    decision: Decision | None
    reason: str | None = None
    decided_at: Timestamp | None = None


class MatchOut(BaseModel):
    city_a: str
    city_b: str
    score: float = Field(description="The sum of `contributions`")
    eligible: bool = Field(description="True when every check passed: the pair may be suggested")
    weights_version: str
    weights: dict[str, float]
    values: dict[str, float] = Field(description="Each factor's value in [0, 1]")
    contributions: dict[str, float]
    gain_to_a: float
    gain_to_b: float
    themes_to_a: list[ThemeFlowOut]
    themes_to_b: list[ThemeFlowOut]
    shared_needs: list[str]
    distance_km: float
    checks: list[CheckOut]
    rules: RulesOut
    decisions: list[DecisionState] = []
    status: MatchStatus = "open"


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    reason: DeclineReason | AcceptReason = Field(
        description="Why: for a decline one of DeclineReason, for an accept one of AcceptReason"
    )
    text: str = Field("", max_length=2000)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        """The contract says which reasons go with which decision (one schema per `decision`); validation keeps one
        model, so that a reason of the other decision is answered 422 naming `reason` and the reasons allowed."""
        either = Annotated[AcceptDecision | DeclineDecision, Field(discriminator="decision")]
        return handler(TypeAdapter(either).core_schema)


class AcceptDecision(BaseModel):
    """An accept as the contract states it (`DecisionIn` validates it)."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["accept"]
    reason: AcceptReason
    text: str = Field("", max_length=2000)


class DeclineDecision(BaseModel):
    """A decline as the contract states it (`DecisionIn` validates it)."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["decline"]
    reason: DeclineReason
    text: str = Field("", max_length=2000)


class DecisionOut(BaseModel):
    city_a: str
    city_b: str
    city_id: str = Field(description="The city this decision was made for")
    decision: str
    reason: str
    text: str
    decided_at: Timestamp
    status: MatchStatus
    score: float
    weights_version: str


class RoundCities(BaseModel):
    model_config = ConfigDict(extra="forbid")

    city_ids: list[str] = Field([], max_length=25_000, description="Cities by id (ANDed with the other filters)")
    countries: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] = Field(
        [], max_length=250, description="ISO 3166-1 alpha-2"
    )
    corridors: list[Corridor] = Field([], max_length=10)


class RoundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cities: RoundCities = RoundCities()
    capacity: json_integer(ge=1, le=20) = Field(1, description="New partners per city at most")
    min_score: StrictFloat = Field(0.0, ge=0.0, le=1.0)


class RoundPairOut(BaseModel):
    city_ids: list[str]
    names: list[str]
    score: float


class UnmatchedOut(BaseModel):
    city_id: str
    name: str
    reason: UnmatchedReason


class RoundOut(BaseModel):
    id: str
    created_at: Timestamp
    created_by: str
    request: RoundIn
    method: str
    weights_version: str
    total_score: float
    pairs: list[RoundPairOut]
    unmatched: list[UnmatchedOut]
    published_at: Timestamp | None = Field(None, description="When a coordinator published it; None while a draft")
    published_by: str | None = None


class RoundSummaryOut(BaseModel):
    """A round in the list of rounds: what was asked and how it came out, without its pairs."""

    id: str
    created_at: Timestamp
    created_by: str
    request: RoundIn
    weights_version: str
    total_score: float
    pair_count: int
    unmatched_count: int
    published_at: Timestamp | None = None
    published_by: str | None = None


class ClusterMemberOut(BaseModel):
    city_id: str
    name: str
    country_code: str


class ClusterOut(BaseModel):
    members: list[ClusterMemberOut]
    cohesion: float = Field(description="Mean score over all pairs of members")
    min_pair_score: float
    shared_themes: list[str]


class ClustersOut(BaseModel):
    weights_version: str
    size: int
    theme: str | None
    computed_at: Timestamp = Field(description="When the index these clusters were found in was taken")
    stale: bool = Field(
        description="The index has changed since `computed_at`: newer clusters are being found (ask again later)"
    )
    items: list[ClusterOut]
