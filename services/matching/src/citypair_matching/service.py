"""Matching use cases: keep the projection and the graph, answer for suggestions, record decisions, run rounds."""

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_matching import clusters as clustering
from citypair_matching import rounds as rounding
from citypair_matching.cluster_cache import ClusterCache, Found, FrozenIndex, Snapshot
from citypair_matching.core import CityRow, Explanation, MatchIndex
from citypair_matching.models import CityProjection, MatchDecision, MatchPair, MatchRound, Partnership
from citypair_matching.schemas import AcceptReason, DecisionIn, DeclineReason, RoundIn
from citypair_shared.auth import Principal, forbidden
from citypair_shared.db import after_commit, insert_if_absent
from citypair_shared.events import (
    CitySnapshot,
    MatchAccepted,
    MatchDeclined,
    RoundCompleted,
    RoundPublished,
    SuggestionsFound,
    new_event,
)
from citypair_shared.events.matching import SuggestedPartner
from citypair_shared.inbox import keep_newest
from citypair_shared.outbox import OutboxRelay
from citypair_shared.problems import Problem, invalid, not_found

SOURCE = "/citypair/matching"
PROGRAMME = ("admin", "coordinator")  # who runs, publishes and sees unpublished rounds


def _row(city: CitySnapshot) -> CityRow:
    themes = {k: v.model_dump() for k, v in city.themes.items()}
    return CityRow(
        id=city.id,
        version=city.version,
        name=city.name,
        country_code=city.country_code,
        status=city.status,
        themes=themes,
        latitude=city.latitude,
        longitude=city.longitude,
        population=city.population,
        timezone=city.timezone,
        languages=tuple(city.languages),
        corridors=tuple(city.corridors),
        capacity=city.capacity,
        excluded_countries=tuple(city.excluded_countries),
    )


async def apply_snapshots(
    *, session: AsyncSession, index: MatchIndex, relay: OutboxRelay, cities: list[CitySnapshot]
) -> list[bool]:
    """Store each snapshot, in order, if it is newer than what the projection holds (one query for the rows held);
    whether each was applied. Each city it publishes (new, or from another status) gets its partner suggestions
    staged as an event in the same transaction."""
    # The rows held, loaded before `keep_newest` reads them (the same objects): their status is the one its
    # `WHERE version = :read` writes over, so two batches publishing one city cannot both see it unpublished.
    ids = sorted({c.id for c in cities})
    held = await session.scalars(select(CityProjection).where(CityProjection.id.in_(ids)))
    was_published = {row.id for row in held if row.status == "published"}
    snapshots = [
        {"id": c.id, "version": c.version, "status": c.status, "snapshot": c.model_dump(mode="json")} for c in cities
    ]
    applied = await keep_newest(session, CityProjection, snapshots)
    kept = [city for city, done in zip(cities, applied, strict=True) if done]
    if kept:
        after_commit(session, lambda: remember_snapshots(index, kept))
    for city in kept:
        if city.partner_ids:
            pairs = [(city.id, p) for p in city.partner_ids]
            await record_partnerships(session=session, index=index, pairs=pairs, source="profile", reference=city.id)
    latest = {city.id: city for city in kept}
    published = [c for c in latest.values() if c.status == "published" and c.id not in was_published]
    if published:
        # Ranked with these snapshots in the index: every replica's follower applies them anyway, committed or not.
        remember_snapshots(index, kept)
        stage_suggestions(session=session, relay=relay, index=index, city_ids=[c.id for c in published])
    return applied


SUGGESTED = 10  # partners named in a newly published city's suggestions, as `GET /cities/{id}/partners` by default


def stage_suggestions(*, session: AsyncSession, relay: OutboxRelay, index: MatchIndex, city_ids: list[str]) -> None:
    """One `SuggestionsFound` per city with any partner to suggest (its top ones, two-sided, published only)."""
    tops = index.ranked(np.array([index.position(c) for c in city_ids], dtype=np.int64), SUGGESTED)
    for city_id, top in zip(city_ids, tops, strict=True):
        if not top:
            continue
        suggestions = [
            SuggestedPartner(city_id=index.row_at(p).id, name=index.row_at(p).name, score=round(s, 6)) for p, s in top
        ]
        data = SuggestionsFound(city_id=city_id, name=index.city(city_id).name, suggestions=suggestions)
        relay.add(session, new_event(data, source=SOURCE, subject=city_id))


def remember_snapshots(index: MatchIndex, cities: list[CitySnapshot]) -> None:
    """The snapshots in memory, as one at a time in order would leave it: each city (if newer than the one held)
    and the partners it names; the cities between two that name partners in one index update."""
    rows = []
    for city in cities:
        rows.append(_row(city))
        partners = [p for p in city.partner_ids if p != city.id]
        if partners:
            index.upsert_many(rows)
            rows = []
            for partner in partners:
                index.add_partnership(city.id, partner)
    index.upsert_many(rows)


def all_pairs(city_ids: list[str]) -> list[tuple[str, str]]:
    return [(a, b) for a in city_ids for b in city_ids if a < b]


async def record_partnerships(
    *, session: AsyncSession, index: MatchIndex, pairs: list[tuple[str, str]], source: str, reference: str
) -> None:
    """Record each pair as partners (idempotent)."""
    pairs = {tuple(sorted(pair)) for pair in pairs if pair[0] != pair[1]}
    for a, b in sorted(pairs):
        # Not "look, then add": a decision and a profile event may record the same pair at once.
        await insert_if_absent(session, Partnership, city_a=a, city_b=b, source=source, reference=reference)
    after_commit(session, lambda: [index.add_partnership(a, b) for a, b in pairs])


async def load_index(*, session: AsyncSession, index: MatchIndex) -> None:
    """Rebuild the in-memory index from this service's own tables (not by replaying events)."""
    cities = await session.scalars(select(CityProjection))
    index.upsert_many(_row(CitySnapshot.model_validate(city.snapshot)) for city in cities)
    for edge in await session.scalars(select(Partnership)):
        index.add_partnership(edge.city_a, edge.city_b)
    for decision in await session.scalars(select(MatchDecision).where(MatchDecision.decision == "decline")):
        index.add_decline(decision.city_a, decision.city_b, decision.decided_at)


# ---------------------------------------------------------------------- decisions


async def latest_decisions(session: AsyncSession, a: str, b: str) -> dict[str, MatchDecision]:
    """Each city's latest decision on the pair."""
    lo, hi = sorted((a, b))
    rows = await session.scalars(
        select(MatchDecision).where(MatchDecision.city_a == lo, MatchDecision.city_b == hi).order_by(MatchDecision.id)
    )
    return {row.city_id: row for row in rows}


def pair_status(decisions: dict[str, MatchDecision], a: str, b: str) -> str:
    mine = [decisions.get(a), decisions.get(b)]
    if any(d is not None and d.decision == "decline" for d in mine):
        return "declined"
    if all(d is not None and d.decision == "accept" for d in mine):
        return "accepted"
    return "open"


def deciding_city(user: Principal, a: str, b: str) -> str | None:
    """The city of the pair the official decides for (the first they represent), or None."""
    return next((c for c in (a, b) if user.official_of(c)), None)


def _record(explanation: Explanation, index: MatchIndex) -> dict:
    a, b = index.city(explanation.city_a), index.city(explanation.city_b)
    return {
        "score": explanation.score,
        "contributions": explanation.contributions,
        "values": explanation.values,
        "weights_version": index.weights.version,
        "realism_version": index.realism.version,
        "profile_versions": {a.id: a.version, b.id: b.version},
        "themes": sorted({f.theme for f in explanation.themes_to_a + explanation.themes_to_b}),
        "rules": index.rules.describe(),
    }


async def decide(
    *,
    session: AsyncSession,
    relay: OutboxRelay,
    index: MatchIndex,
    user: Principal,
    city_id: str,
    other_id: str,
    body: DecisionIn,
) -> tuple[MatchDecision, str]:
    """Record `city_id`'s decision on the pair; publish accepted (both accepted) or declined through the outbox."""
    allowed = DeclineReason if body.decision == "decline" else AcceptReason
    if body.reason not in {r.value for r in allowed}:
        allowed_reasons = [r.value for r in allowed]
        raise invalid(
            "reason",
            f"for {body.decision!r} use one of {allowed_reasons}",
            code="reason_not_allowed",
            decision=body.decision,
            allowed=allowed_reasons,
        )
    explanation = index.explain(city_id, other_id)
    if body.decision == "accept" and not explanation.eligible:
        failed = [c for c in explanation.checks if not c.passed]
        raise Problem(
            409,
            "Pair excluded",
            "this pair fails: " + "; ".join(f"{c.name} ({c.detail})" for c in failed),
            type_="/problems/pair-excluded",
            failed_checks=[c.name for c in failed],
        )
    record = _record(explanation, index)
    lo, hi = sorted((city_id, other_id))
    await _lock_pair(session, lo, hi)
    before = await latest_decisions(session, lo, hi)
    if city_id in before and before[city_id].decision == body.decision:
        raise Problem(
            409, "Already decided", f"city {city_id} has already made this decision on the pair",
            type_="/problems/already-decided", pair_status=pair_status(before, lo, hi),
        )  # fmt: skip
    decision = MatchDecision(
        city_a=lo,
        city_b=hi,
        city_id=city_id,
        decision=body.decision,
        reason=str(body.reason),
        text=body.text,
        decided_by=user.user_id,
        decided_at=datetime.now(UTC),
        score=explanation.score,
        weights_version=index.weights.version,
        record=record,
    )
    session.add(decision)
    decisions = {**before, city_id: decision}
    status = pair_status(decisions, lo, hi)
    if body.decision == "decline":
        at = decision.decided_at
        after_commit(session, lambda: index.add_decline(lo, hi, at))
        data = MatchDeclined(
            city_ids=[lo, hi],
            reason=str(body.reason),
            declined_by_city=city_id,
            text=body.text,
            score=explanation.score,
            weights_version=index.weights.version,
            declined_at=at,
        )
        relay.add(session, new_event(data, source=SOURCE, subject=f"{lo}/{hi}"))
    elif status == "accepted":
        data = MatchAccepted(
            city_ids=[lo, hi],
            score=explanation.score,
            factors=explanation.contributions,
            weights_version=index.weights.version,
            profile_versions=record["profile_versions"],
            themes=record["themes"],
            realism_version=index.realism.version,
            decided_by={c: d.decided_by for c, d in decisions.items()},
        )
        relay.add(session, new_event(data, source=SOURCE, subject=f"{lo}/{hi}"))
        await record_partnerships(
            session=session, index=index, pairs=[(lo, hi)], source="match", reference=lo + "/" + hi
        )
    await session.commit()
    return decision, status


async def _lock_pair(session: AsyncSession, lo: str, hi: str) -> None:
    """Hold the pair's row until commit: a decision made at the same moment waits, then sees this one."""
    await insert_if_absent(session, MatchPair, city_a=lo, city_b=hi, decisions=0)
    this_pair = (MatchPair.city_a == lo) & (MatchPair.city_b == hi)
    await session.execute(update(MatchPair).where(this_pair).values(decisions=MatchPair.decisions + 1))


# ---------------------------------------------------------------------- rounds


def round_positions(index: MatchIndex, body: RoundIn) -> np.ndarray:
    wanted = body.cities
    unknown = [c for c in wanted.city_ids if c not in index]
    if unknown:
        raise invalid("cities.city_ids", f"unknown cities {unknown[:10]}", code="unknown_cities", city_ids=unknown[:10])
    ids = set(wanted.city_ids)
    keep = []
    for pos in index.positions():
        row = index.row_at(int(pos))
        if ids and row.id not in ids:
            continue
        if wanted.countries and row.country_code not in wanted.countries:
            continue
        if wanted.corridors and not set(wanted.corridors) & set(row.corridors):
            continue
        if row.status == "published":
            keep.append(int(pos))
    return np.array(keep, dtype=np.int64)


async def run_round(
    *, session: AsyncSession, relay: OutboxRelay, index: MatchIndex, user: Principal, body: RoundIn
) -> MatchRound:
    positions = round_positions(index, body)
    result = rounding.pair_round(
        index, positions, capacity=body.capacity, min_score=body.min_score, now=datetime.now(UTC)
    )
    row = index.row_at
    stored = MatchRound(
        id=str(uuid.uuid4()),
        created_by=user.user_id,
        created_at=datetime.now(UTC),
        request=body.model_dump(mode="json"),
        pairs=[
            {"city_ids": [row(u).id, row(v).id], "names": [row(u).name, row(v).name], "score": round(s, 6)}
            for u, v, s in result.pairs
        ],
        unmatched=[{"city_id": row(p).id, "name": row(p).name, "reason": str(r)} for p, r in result.unmatched.items()],
        total_score=result.total,
        method=result.method,
        weights_version=index.weights.version,
    )
    session.add(stored)
    data = RoundCompleted(
        round_id=stored.id,
        pairs=[p["city_ids"] for p in stored.pairs],
        total_score=stored.total_score,
        capacity=body.capacity,
        min_score=body.min_score,
        unmatched={u["city_id"]: u["reason"] for u in stored.unmatched},
        weights_version=stored.weights_version,
    )
    relay.add(session, new_event(data, source=SOURCE, subject=stored.id))
    await session.commit()
    return stored


# The columns of a round in the list of rounds: its pairs and unmatched cities counted by the database, not loaded.
ROUND_SUMMARY = (
    MatchRound.id,
    MatchRound.created_at,
    MatchRound.created_by,
    MatchRound.request,
    MatchRound.weights_version,
    MatchRound.total_score,
    func.json_array_length(MatchRound.pairs).label("pair_count"),
    func.json_array_length(MatchRound.unmatched).label("unmatched_count"),
    MatchRound.published_at,
    MatchRound.published_by,
)


def may_see_drafts(user: Principal) -> bool:
    """Coordinators and admins see every round; others only the published ones."""
    return user.has_role(*PROGRAMME)


async def list_rounds(
    *, session: AsyncSession, user: Principal, published: bool | None, limit: int, offset: int
) -> tuple[list, int]:
    """Rounds newest first, as summaries; drafts only for those who may see them."""
    query = select(*ROUND_SUMMARY)
    if published or not may_see_drafts(user):
        query = query.where(MatchRound.published_at.is_not(None))
    if published is False:  # drafts only: none for those who may not see them
        query = query.where(MatchRound.published_at.is_(None))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    newest_first = query.order_by(MatchRound.created_at.desc(), MatchRound.id)
    rows = await session.execute(newest_first.limit(limit).offset(offset))
    return [row._asdict() for row in rows], total


async def get_round(*, session: AsyncSession, user: Principal, round_id: str) -> MatchRound:
    stored = await session.get(MatchRound, round_id)
    if stored is None:
        raise not_found("round", round_id)
    if stored.published_at is None and not may_see_drafts(user):
        raise forbidden("only coordinators and admins see a round before it is published", required_roles=PROGRAMME)
    return stored


async def publish_round(*, session: AsyncSession, relay: OutboxRelay, user: Principal, round_id: str) -> MatchRound:
    """Publish a round once: the one UPDATE that finds it unpublished sets who and when and emits the event in the
    same transaction; any other publish, at once or later, changes nothing and answers the round as it is."""
    now = datetime.now(UTC)
    claimed = await session.execute(
        update(MatchRound)
        .where(MatchRound.id == round_id, MatchRound.published_at.is_(None))
        .values(published_at=now, published_by=user.user_id)
    )
    stored = await session.get(MatchRound, round_id, populate_existing=True)
    if stored is None:
        raise not_found("round", round_id)
    if claimed.rowcount == 1:
        pairs = [p["city_ids"] for p in stored.pairs]
        data = RoundPublished(
            round_id=round_id,
            pairs=pairs,
            city_ids=sorted({c for pair in pairs for c in pair}),
            published_at=now,
            published_by=user.user_id,
        )
        relay.add(session, new_event(data, source=SOURCE, subject=round_id))
    await session.commit()
    return stored


# ---------------------------------------------------------------------- clusters

CLUSTER_SIZE = 5  # cities per cluster at most, when not asked (the clusters page asks only when its user chooses)
CLUSTERS_SHOWN = 10


def clusters_state(index: MatchIndex, now: datetime) -> tuple[int, int]:
    """What clusters found depend on: the index's changes, and how many declines have ended (they end with time)."""
    return index.links.generation, index.links.declines_ended(now)


async def find_clusters(
    *, cache: ClusterCache, index: MatchIndex, theme: str | None, size: int, limit: int
) -> tuple[Found, bool]:
    """The query's clusters and whether they are stale (the index changed since): at once, unless the query was
    never answered (see `ClusterCache`)."""
    key, snapshot = _clusters_query(index, theme=theme, size=size, limit=limit)
    return await cache.get(key, clusters_state(index, datetime.now(UTC)), snapshot)


def refresh_clusters(
    *, cache: ClusterCache, index: MatchIndex, theme: str | None, size: int, limit: int
) -> asyncio.Task[Found]:
    """The query's build under way in the background, started if none is."""
    return cache.refresh(*_clusters_query(index, theme=theme, size=size, limit=limit))


def _clusters_query(index: MatchIndex, *, theme: str | None, size: int, limit: int) -> tuple[tuple, Snapshot]:
    """The query's key in the cache, and how a build for it starts."""
    return (theme, size, limit), partial(_snapshot_clusters, index, theme=theme, size=size, limit=limit)


def _snapshot_clusters(index: MatchIndex, *, theme: str | None, size: int, limit: int) -> Callable[[], Found]:
    """On the loop: the index as it is now; returns the work of finding the clusters in it, for another thread."""
    now = datetime.now(UTC)
    frozen, state = FrozenIndex(index), clusters_state(index, now)
    return lambda: Found(_clusters_now(frozen, theme=theme, size=size, limit=limit, now=now), state, now)


def _clusters_now(index: FrozenIndex, *, theme: str | None, size: int, limit: int, now: datetime):
    keep = [
        int(p)
        for p in index.positions()
        if index.row_at(int(p)).status == "published"
        and (theme is None or any(index.row_at(int(p)).themes.get(theme, {}).get(x, 0) >= 3 for x in ("offer", "need")))
    ]
    return clustering.find_clusters(index, np.array(keep, dtype=np.int64), size=size, limit=limit, now=now)
