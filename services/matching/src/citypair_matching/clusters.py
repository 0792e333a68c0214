"""Clusters for multi-city pilot zones: groups of 3–8 cities with strong mutual scores. Pure.

Seeds are the strongest pairs of a k-nearest-partners graph; each group grows by the candidate
(from its members' nearest partners) with the best mean score to every member, while every pair
in it is allowed. Cohesion is the mean score over all pairs of the group.
"""

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from citypair_matching.core import MatchIndex
from citypair_matching.rows import level_of
from citypair_shared.themes import THEME_IDS

NEIGHBOURS = 8
STRONG = 3  # a theme level that counts as a real offer or need


@dataclass(frozen=True)
class Cluster:
    members: list[int]
    cohesion: float
    min_pair_score: float
    shared_themes: list[str]


def shared_themes(index: MatchIndex, members: list[int]) -> list[str]:
    """Themes the group can work on together: one member offers it at STRONG or more and another needs it
    at STRONG or more, or two members need it at STRONG or more. Most members involved first."""
    rows = [index.row_at(p) for p in members]
    found = []
    for theme in THEME_IDS:
        offers = {r.id for r in rows if level_of(r, theme, "offer") >= STRONG}
        needs = {r.id for r in rows if level_of(r, theme, "need") >= STRONG}
        if len(needs) >= 2 or (offers and needs - offers) or (len(offers) >= 2 and needs):
            found.append((len(offers | needs), theme))
    return [theme for _, theme in sorted(found, key=lambda x: (-x[0], x[1]))]


def find_clusters(
    index: MatchIndex,
    positions: np.ndarray,
    *,
    size: int,
    limit: int,
    now: datetime,
    neighbours: int = NEIGHBOURS,
) -> list[Cluster]:
    positions = np.asarray(positions, dtype=np.int64)
    knn = index.ranked_all(positions, neighbours, now=now)
    seeds = sorted(
        ((score, min(u, v), max(u, v)) for u, top in knn.items() for v, score in top), key=lambda s: (-s[0], s[1], s[2])
    )
    used: set[int] = set()
    clusters: list[Cluster] = []
    for _, u, v in seeds:
        if len(clusters) >= limit:
            break
        if u in used or v in used:
            continue
        members = [u, v]
        while len(members) < size:
            pool = sorted({c for m in members for c, _ in knn.get(m, ()) if c not in used and c not in members})
            if not pool:
                break
            scores = index.allowed_scores(np.array(members), np.array(pool), now=now)
            worst = scores.min(axis=0)
            mean = scores.mean(axis=0)
            mean[~np.isfinite(worst)] = -np.inf
            best = int(np.argmax(mean))
            if not np.isfinite(mean[best]):
                break
            members.append(pool[best])
        if len(members) < 3:
            continue
        block = np.array(members)
        scores = index.allowed_scores(block, block, now=now)
        pair_scores = scores[np.triu_indices(len(members), 1)]
        clusters.append(
            Cluster(
                members=members,
                cohesion=round(float(pair_scores.mean()), 6),
                min_pair_score=round(float(pair_scores.min()), 6),
                shared_themes=shared_themes(index, members),
            )
        )
        used.update(members)
    # Grown greedily from the strongest pairs, so a later seed may grow a closer group: shown most cohesive first.
    return sorted(clusters, key=lambda c: (-c.cohesion, c.members))
