from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from citypair_matching import service
from citypair_matching.core import Check, MatchIndex
from citypair_matching.metrics import RANKING_SECONDS
from citypair_matching.models import MatchRound
from citypair_matching.schemas import (
    CheckOut,
    ClusterMemberOut,
    ClusterOut,
    ClustersOut,
    DecisionIn,
    DecisionOut,
    DecisionState,
    MatchOut,
    PartnersOut,
    RoundIn,
    RoundOut,
    RoundSummaryOut,
    RulesOut,
)
from citypair_shared.auth import CurrentUser, Principal, forbidden, require_roles
from citypair_shared.deps import IdPath, Page, PageDep, RuntimeDep, SessionDep
from citypair_shared.geography import Corridor
from citypair_shared.problems import invalid, not_found, problem_responses
from citypair_shared.themes import ThemeId

router = APIRouter(prefix="/api/v1", tags=["matching"])
NO_CITY = {404: "No such city"}
Programme = Annotated[Principal, require_roles("admin", "coordinator")]


def _index(request: Request, *city_ids: str) -> MatchIndex:
    index = request.app.state.index
    for city_id in city_ids:
        if city_id not in index:
            raise not_found("city", city_id)
    return index


def _flows(flows) -> list[dict]:
    return [{**vars(f), "text": f.text} for f in flows]


def _rules(index: MatchIndex) -> RulesOut:
    return RulesOut(**index.rules.describe())


def _check(check: Check) -> CheckOut:
    return CheckOut(**asdict(check))


@router.get(
    "/cities/{city_id}/partners",
    response_model=PartnersOut,
    responses=problem_responses(401, 422, described=NO_CITY),
)
async def partners(
    city_id: IdPath,
    request: Request,
    _: CurrentUser,
    k: Annotated[int, Query(ge=1, le=100, description="How many partners")] = 10,
    theme: Annotated[ThemeId | None, Query(description="Partners active (offer or need) in this theme")] = None,
    corridor: Annotated[Corridor | None, Query(description="Partners on this corridor")] = None,
    country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$", description="Partners in this country")] = None,
):
    """Ranked partner suggestions (both cities must gain), each with its factor contributions and themes."""
    index = _index(request, city_id)
    with RANKING_SECONDS.time():
        found = index.suggest(city_id, k, theme=theme, corridor=corridor, country=country.upper() if country else None)
    # plain dicts: the response model validates and serialises them once
    items = [
        {**vars(s), "themes_to_city": _flows(s.themes_to_city), "themes_to_partner": _flows(s.themes_to_partner)}
        for s in found
    ]
    return {
        "city_id": city_id,
        "weights_version": index.weights.version,
        "weights": index.weights.factors(),
        "rules": index.rules.describe(),
        "city_constraints": [vars(c) for c in index.city_checks(city_id)],
        "items": items,
    }


@router.get(
    "/matches/{city_a}/{city_b}",
    response_model=MatchOut,
    responses=problem_responses(401, 422, described=NO_CITY),
)
async def explain_match(city_a: IdPath, city_b: IdPath, request: Request, session: SessionDep, _: CurrentUser):
    """Explain any pair: each factor's value and contribution, the themes each way, each constraint passed or not."""
    index = _index(request, city_a, city_b)
    e = index.explain(city_a, city_b)
    decisions = await service.latest_decisions(session, city_a, city_b)
    return MatchOut(
        city_a=city_a,
        city_b=city_b,
        score=e.score,
        eligible=e.eligible,
        weights_version=index.weights.version,
        weights=index.weights.factors(),
        values=e.values,
        contributions=e.contributions,
        gain_to_a=e.gain_to_a,
        gain_to_b=e.gain_to_b,
        themes_to_a=_flows(e.themes_to_a),
        themes_to_b=_flows(e.themes_to_b),
        shared_needs=e.shared_needs,
        distance_km=e.distance_km,
        checks=[_check(c) for c in e.checks],
        rules=_rules(index),
        decisions=[
            DecisionState(
                city_id=c,
                decision=decisions[c].decision if c in decisions else None,
                reason=decisions[c].reason if c in decisions else None,
                decided_at=decisions[c].decided_at if c in decisions else None,
            )
            for c in (city_a, city_b)
        ],
        status=service.pair_status(decisions, city_a, city_b),
    )


@router.post(
    "/matches/{city_a}/{city_b}/decision",
    response_model=DecisionOut,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        401, 403, 422, described={**NO_CITY, 409: "The pair is excluded (accepting needs every check passed)"}
    ),
)
async def decide(
    city_a: IdPath,
    city_b: IdPath,
    body: DecisionIn,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
):
    """An official of A or B accepts or declines the pair for their city (the first of the two they represent).

    Both accepted → `matching.match.accepted.v1`; a decline excludes the pair for 12 months → `.declined.v1`.
    """
    index = _index(request, city_a, city_b)
    city_id = service.deciding_city(user, city_a, city_b)
    if city_id is None:
        raise forbidden("only an official of one of the two cities decides for it", required_roles=["official"])
    if city_a == city_b:
        raise invalid("city_b", "a city is never its own partner", code="own_partner")
    other = city_b if city_id == city_a else city_a
    decision, pair_status = await service.decide(
        session=session, relay=runtime.relay, index=index, user=user, city_id=city_id, other_id=other, body=body
    )
    return DecisionOut(
        city_a=decision.city_a,
        city_b=decision.city_b,
        city_id=decision.city_id,
        decision=decision.decision,
        reason=decision.reason,
        text=decision.text,
        decided_at=decision.decided_at,
        status=pair_status,
        score=decision.score,
        weights_version=decision.weights_version,
    )


def _round_out(stored: MatchRound) -> RoundOut:
    return RoundOut(
        id=stored.id,
        created_at=stored.created_at,
        created_by=stored.created_by,
        request=RoundIn.model_validate(stored.request),
        method=stored.method,
        weights_version=stored.weights_version,
        total_score=stored.total_score,
        pairs=stored.pairs,
        unmatched=stored.unmatched,
        published_at=stored.published_at,
        published_by=stored.published_by,
    )


@router.post(
    "/rounds",
    response_model=RoundOut,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422),
)
async def create_round(body: RoundIn, request: Request, session: SessionDep, runtime: RuntimeDep, user: Programme):
    """A programme round (coordinators, admins): pair the chosen cities, maximising the total two-sided score."""
    stored = await service.run_round(
        session=session, relay=runtime.relay, index=request.app.state.index, user=user, body=body
    )
    return _round_out(stored)


@router.get("/rounds", response_model=Page[RoundSummaryOut], responses=problem_responses(401, 422))
async def list_rounds(
    session: SessionDep,
    page: PageDep,
    user: CurrentUser,
    published: Annotated[bool | None, Query(description="Only published (true) or only draft (false) rounds")] = None,
):
    """Past rounds, newest first, without their pairs; coordinators and admins also see the unpublished ones."""
    items, total = await service.list_rounds(
        session=session, user=user, published=published, limit=page.limit, offset=page.offset
    )
    return Page[RoundSummaryOut](items=items, total=total, limit=page.limit, offset=page.offset)


@router.get(
    "/rounds/{round_id}",
    response_model=RoundOut,
    responses=problem_responses(401, 403, 422, described={404: "No such round"}),
)
async def get_round(round_id: IdPath, session: SessionDep, user: CurrentUser):
    """A stored round; until it is published, only coordinators and admins see it."""
    return _round_out(await service.get_round(session=session, user=user, round_id=round_id))


@router.post(
    "/rounds/{round_id}/publish",
    response_model=RoundOut,
    responses=problem_responses(401, 403, 422, described={404: "No such round"}),
)
async def publish_round(round_id: IdPath, session: SessionDep, runtime: RuntimeDep, user: Programme):
    """Publish a round (coordinators, admins): once; publishing it again answers it unchanged.

    The first publish records who and when and sends `matching.round.published.v1` naming its pairs and cities.
    """
    stored = await service.publish_round(session=session, relay=runtime.relay, user=user, round_id=round_id)
    return _round_out(stored)


@router.get("/clusters", response_model=ClustersOut, responses=problem_responses(401, 422))
async def clusters(
    request: Request,
    _: CurrentUser,
    theme: Annotated[ThemeId | None, Query(description="Members strong (3+) in this theme")] = None,
    size: Annotated[int, Query(ge=3, le=8, description="Cities per cluster at most")] = service.CLUSTER_SIZE,
    limit: Annotated[int, Query(ge=1, le=50)] = service.CLUSTERS_SHOWN,
):
    """Groups of 3–8 cities with strong mutual scores, for multi-city pilot zones.

    Answered at once: after a change to the index, the clusters found before it (`stale`) while newer ones are
    found in the background; only a query never answered since the service started waits for them."""
    index = request.app.state.index
    found, stale = await service.find_clusters(
        cache=request.app.state.clusters, index=index, theme=theme, size=size, limit=limit
    )
    items = [
        ClusterOut(
            members=[
                ClusterMemberOut(city_id=(r := index.row_at(p)).id, name=r.name, country_code=r.country_code)
                for p in c.members
            ],
            cohesion=c.cohesion,
            min_pair_score=c.min_pair_score,
            shared_themes=c.shared_themes,
        )
        for c in found.clusters
    ]
    return ClustersOut(
        weights_version=index.weights.version,
        size=size,
        theme=theme,
        computed_at=found.computed_at,
        stale=stale,
        items=items,
    )
