"""The evaluation's splits (`realism_fit.split_pairs`): what each hides, and that no hidden pair reaches the
training graph or the fit; the index the evaluation ranks with."""

import random
from datetime import UTC, datetime

import numpy as np
import pytest

from citypair_cli import realism_fit
from citypair_cli.realism_fit import LOW_DEGREE, World, fit_on_pairs, split_pairs
from citypair_matching.realism import RealismModel


@pytest.fixture(scope="module")
def world() -> World:
    rng = random.Random(5)
    cities = [
        {
            "name": f"C{i}",
            "countrycode": rng.choice(["DE", "FR", "PL", "US"]),
            "latitude": rng.uniform(-60, 70),
            "longitude": rng.uniform(-180, 180),
            "population": rng.randint(1_000, 2_000_000),
            "timezone": None,
        }
        for i in range(120)
    ]
    edges = set()
    while len(edges) < 200:
        a, b = sorted(rng.sample(range(100), 2))  # the last 20 cities have no partner: the universe is wider
        edges.add((a, b))
    return World(cities=cities, edges=sorted(edges))


def check_partition(world: World, split) -> None:
    kept, hidden = set(split.kept), set(split.hidden)
    assert kept.isdisjoint(hidden) and kept | hidden == set(world.edges)
    for q in split.queries:
        assert split.hidden_of[q], q  # every query has something to find
        for p in split.hidden_of[q]:
            assert (min(p, q), max(p, q)) in hidden


def test_random_split_hides_the_share(world):
    split = split_pairs(world.edges, "random", 0.2, seed=1)
    check_partition(world, split)
    assert len(split.hidden) == 40
    assert split.queries == sorted({c for e in split.hidden for c in e})
    assert split_pairs(world.edges, "random", 0.2, seed=1).hidden == split.hidden  # by the seed


def test_cold_split_hides_every_pair_of_the_joining_cities(world):
    split = split_pairs(world.edges, "cold", 0.1, seed=2)
    check_partition(world, split)
    with_partner = {c for e in world.edges for c in e}
    assert len(split.queries) == round(0.1 * len(with_partner))
    joining = set(split.queries)
    for a, b in world.edges:  # hidden exactly when a joining city is in the pair
        assert ((a, b) in set(split.hidden)) == bool({a, b} & joining)
    kept_cities = {c for e in split.kept for c in e}
    assert not kept_cities & joining  # a joining city has no partner left
    for q in split.queries:  # and all its real partners are its targets
        assert sorted(split.hidden_of[q]) == sorted(b if a == q else a for a, b in world.edges if q in (a, b))


def test_low_degree_split_hides_pairs_of_low_degree_cities(world):
    split = split_pairs(world.edges, "low-degree", 0.5, seed=3)
    check_partition(world, split)
    degree = np.bincount(np.array(world.edges).ravel())
    low = [e for e in world.edges if degree[e[0]] <= LOW_DEGREE and degree[e[1]] <= LOW_DEGREE]
    assert split.hidden and all(degree[a] <= LOW_DEGREE and degree[b] <= LOW_DEGREE for a, b in split.hidden)
    assert len(split.hidden) == round(0.5 * len(low))


@pytest.mark.parametrize("kind", ["random", "cold", "low-degree"])
def test_no_hidden_pair_reaches_the_fit(world, kind, monkeypatch):
    split = split_pairs(world.edges, kind, 0.2, seed=4)
    graphs, positives = [], []
    build = realism_fit.build_index

    def spy_build(w, edges, *args, **kwargs):
        graphs.append({tuple(map(int, e)) for e in edges})
        return build(w, edges, *args, **kwargs)

    samples = realism_fit.fold_samples

    def spy_samples(w, kept, hidden, *args):
        positives.append({tuple(map(int, e)) for e in hidden})
        return samples(w, kept, hidden, *args)

    monkeypatch.setattr(realism_fit, "build_index", spy_build)
    monkeypatch.setattr(realism_fit, "fold_samples", spy_samples)
    fit_on_pairs(world, split.kept, seed=0, negatives=10, hard=5, cold_folds=1)
    hidden, kept = set(split.hidden), set(split.kept)
    assert len(graphs) == realism_fit.FOLDS + 1 and len(positives) == len(graphs)
    for graph, found in zip(graphs, positives, strict=True):
        assert not graph & hidden and not found & hidden  # neither in a fold's graph nor among its positives
        assert graph | found == kept and not graph & found


def test_the_ranking_index_scores_as_the_reference_but_for_a_constant(world):
    """`build_index(ranking=True)`, which the evaluation ranks with by the compiled kernel: the neutral theme adds
    the same to every pair's score, and only the city itself and its partners are left out."""
    realism = RealismModel.load()
    plain = realism_fit.build_index(world, world.edges, realism=realism)
    ranking = realism_fit.build_index(world, world.edges, realism=realism, ranking=True)
    block, everyone = np.array([0, 7, 42, 110]), np.arange(len(world.cities))
    kernel = ranking.allowed_scores(block, everyone, now=datetime.now(UTC))
    reference = plain.score(plain.factor_values(block, everyone))
    partners = {(a, b) for e in world.edges for a, b in (e, e[::-1])}
    left_out = np.array([[q == j or (int(q), j) in partners for j in everyone] for q in block])
    assert np.isneginf(kernel[left_out]).all() and np.isfinite(kernel[~left_out]).all()
    shift = kernel[~left_out] - reference[~left_out]
    assert np.allclose(shift, shift[0], atol=1e-5)
