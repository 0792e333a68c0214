"""Programme rounds and clusters: quality against networkx's exact matching, capacities, reasons."""

import random
from datetime import UTC, datetime

import numpy as np
import pytest
from scipy.optimize import linprog
from scipy.sparse import csc_array

from citypair_matching.clusters import find_clusters
from citypair_matching.core import CityRow, MatchIndex
from citypair_matching.realism import RealismModel
from citypair_matching.rounds import (
    candidate_edges,
    double_cover_pairing,
    exact_pairing,
    greedy_pairing,
    lp_pairing,
    pair_round,
)
from citypair_shared.themes import THEME_IDS

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def world(n: int, seed: int) -> MatchIndex:
    rng = random.Random(seed)
    index = MatchIndex(realism=RealismModel.neutral())
    for i in range(n):
        themes = {t: {"offer": rng.randint(0, 5), "need": rng.randint(0, 5)} for t in rng.sample(THEME_IDS, 6)}
        country = rng.choice(["CN", "KZ", "UZ", "RU", "PK", "TR"])
        index.upsert(
            CityRow(f"c{i}", 1, f"C{i}", country, "published", themes, rng.uniform(20, 50), rng.uniform(30, 120))
        )
    return index


def test_round_is_within_one_percent_of_the_exact_optimum_over_every_allowed_pair():
    for seed in (0, 1):
        index = world(150, seed)
        everyone = index.positions()
        scores = index.allowed_scores(everyone, everyone, now=NOW)
        every_pair = {
            (int(a), int(b)): float(scores[a, b]) for a, b in zip(*np.nonzero(np.triu(scores > 0, 1)), strict=True)
        }
        best = sum(every_pair[e] for e in exact_pairing(every_pair))
        result = pair_round(index, everyone, capacity=1, min_score=0.0, now=NOW)
        assert result.method.startswith("linear programme")
        assert result.total >= 0.99 * best, (seed, result.total, best)
        assert all(sum(1 for u, v, _ in result.pairs if p in (u, v)) <= 1 for p in everyone)


def test_linear_programme_pairing_is_near_the_exact_one_on_the_same_edges_and_beats_greedy():
    for seed in (2, 3):
        index = world(300, seed)
        edges = candidate_edges(index, index.positions(), min_score=0.0, now=NOW)
        room = {p: 1 for p in range(300)}
        chosen, bound = lp_pairing(edges, room)
        exact = sum(edges[e] for e in exact_pairing(edges))
        ours = sum(edges[e] for e in chosen)
        assert exact <= bound + 1e-6
        assert ours >= 0.995 * exact, (seed, ours, exact)
        assert ours >= sum(edges[e] for e in greedy_pairing(edges, room)) - 1e-9
        assert all(sum(1 for e in chosen if p in e) <= 1 for p in range(300))


def test_capacity_is_respected_and_unmatched_cities_have_reasons():
    index = world(60, 3)
    result = pair_round(index, index.positions(), capacity=2, min_score=0.3, now=NOW)
    load = np.bincount([p for u, v, _ in result.pairs for p in (u, v)], minlength=60)
    assert load.max() <= 2
    assert all(score >= 0.3 for _, _, score in result.pairs)
    assert result.total == round(sum(s for _, _, s in result.pairs), 6)
    for p, reason in result.unmatched.items():
        assert load[p] == 0 and reason


def test_small_round_with_capacity_one_is_exact():
    index = world(30, 4)
    result = pair_round(index, index.positions(), capacity=1, min_score=0.0, now=NOW)
    assert result.method.startswith("exact")


def test_clusters_are_groups_of_allowed_strong_pairs():
    index = world(120, 5)
    clusters = find_clusters(index, index.positions(), size=5, limit=5, now=NOW)
    assert clusters
    seen = set()
    for cluster in clusters:
        assert 3 <= len(cluster.members) <= 5
        assert not seen & set(cluster.members)
        seen |= set(cluster.members)
        scores = index.allowed_scores(np.array(cluster.members), np.array(cluster.members), now=NOW)
        upper = scores[np.triu_indices(len(cluster.members), 1)]
        assert np.isfinite(upper).all() and abs(upper.mean() - cluster.cohesion) < 1e-5
    cohesion = [cluster.cohesion for cluster in clusters]
    assert cohesion == sorted(cohesion, reverse=True)  # the closest group first


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_double_cover_matching_solves_the_same_linear_programme_as_highs(seed):
    rng = np.random.default_rng(seed)
    n = 120
    pairs = {tuple(sorted(map(int, rng.choice(n, 2, replace=False)))) for _ in range(500)}
    ends = np.array(sorted(pairs))
    weights = rng.uniform(0.1, 1.0, len(ends)).round(2)  # ties too
    room = (rng.random(n) > 0.1).astype(float)  # some cities at capacity
    x, optimum = double_cover_pairing(ends, weights, room)
    incidence = csc_array((np.ones(2 * len(ends)), (ends.T.reshape(-1), np.tile(np.arange(len(ends)), 2))))
    highs = linprog(-weights, A_ub=incidence, b_ub=room, bounds=(0, 1), method="highs")
    assert optimum == pytest.approx(-highs.fun, abs=1e-9)
    assert set(np.unique(x)) <= {0.0, 0.5, 1.0}
    load = np.bincount(ends.reshape(-1), weights=np.repeat(x, 2), minlength=n)
    assert (load <= room + 1e-9).all()
