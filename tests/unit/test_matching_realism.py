"""The realism prior: symmetric, finite features; its graph inputs against plain matrix walks; a deterministic
fit; the shipped parameters."""

import json
import random

import numpy as np
import pytest

from citypair_cli import realism_fit
from citypair_cli.realism_fit import World, build_index, fit_on_pairs
from citypair_matching.core import MatchIndex
from citypair_matching.graph import NEAR_CITIES
from citypair_matching.realism import FEATURES, PARAMS_FILE, RealismModel, feature_arrays

COUNTRIES = ["DE", "FR", "PL", "US", "JP"]


def synthetic_world(n: int, n_edges: int, seed: int) -> World:
    rng = random.Random(seed)
    cities = [
        {
            "name": f"C{i}",
            "countrycode": rng.choice(COUNTRIES),
            "latitude": rng.uniform(-60, 70),
            "longitude": rng.uniform(-180, 180),
            "population": rng.choice([0, rng.randint(1_000, 5_000_000)]),
            "timezone": None,
        }
        for i in range(n)
    ]
    edges = set()
    while len(edges) < n_edges:
        a, b = rng.sample(range(n - 3), 2)  # the last three cities stay without partners
        edges.add((min(a, b), max(a, b)))
    return World(cities=cities, edges=sorted(edges))


@pytest.fixture(scope="module")
def world() -> World:
    return synthetic_world(60, 150, seed=3)


def features_of(index: MatchIndex, block: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(len(block), len(rows), features)."""
    inputs = index.factor_values(block, rows)["_realism_inputs"]
    shape = (len(block), len(rows))
    return np.stack([np.broadcast_to(f, shape) for f in feature_arrays(inputs)], axis=-1)


def test_every_feature_is_finite_and_symmetric(world):
    index = build_index(world, world.edges)
    everyone = index.positions()
    x = features_of(index, everyone, everyone).astype(np.float64)
    assert x.shape[-1] == len(FEATURES)
    assert np.isfinite(x).all()
    for i, name in enumerate(FEATURES):
        assert np.allclose(x[:, :, i], x[:, :, i].T, atol=1e-5), name
    # and the prior on top of them: a probability, symmetric too
    model = RealismModel.load()
    p = np.asarray(model.probability(list(np.moveaxis(x, -1, 0))), dtype=np.float64)
    assert ((p >= 0) & (p <= 1)).all() and np.allclose(p, p.T, atol=1e-6)


def test_graph_inputs_match_plain_walks_over_the_graph(world):
    index = build_index(world, world.edges)
    n = len(world.cities)
    adjacency = np.zeros((n, n))
    for a, b in world.edges:
        adjacency[a, b] = adjacency[b, a] = 1
    country = np.array([COUNTRIES.index(c["countrycode"]) for c in world.cities])
    in_country = adjacency @ np.eye(len(COUNTRIES))[country]  # partners of each city in each country
    degree = adjacency.sum(axis=1)
    everyone = np.arange(n)
    inputs = index.factor_values(everyone, everyone)["_realism_inputs"]
    got = {k: np.broadcast_to(v, (n, n)) for k, v in vars(inputs).items()}
    assert np.allclose(got["three_hop"], np.linalg.matrix_power(adjacency, 3))
    two_hop = adjacency @ in_country  # partners of each city's partners in each country
    assert np.allclose(got["two_hop_a_in_country_b"], two_hop[:, country])
    assert np.allclose(got["two_hop_b_in_country_a"], two_hop[:, country].T)
    assert np.allclose(got["two_hop_degree_a"], (adjacency @ degree)[:, None])
    country_degree = np.bincount(country, weights=degree, minlength=len(COUNTRIES))
    assert np.allclose(got["country_degree_a"], country_degree[country][:, None])
    assert np.allclose(got["total_degree"], 2 * len(world.edges))
    logpop = np.log1p([c["population"] for c in world.cities])
    top = [logpop[country == k].max() for k in range(len(COUNTRIES))]
    assert np.allclose(got["top_logpop_b"], np.array(top)[country][None, :], atol=1e-5)
    # near cities: each city's NEAR_CITIES nearest others, by great circle
    lat, lon = np.radians([c["latitude"] for c in world.cities]), np.radians([c["longitude"] for c in world.cities])
    xyz = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    closeness = xyz @ xyz.T - 3 * np.eye(n)
    near = np.zeros((n, n))
    for a in range(n):
        near[a, np.argsort(-closeness[a])[:NEAR_CITIES]] = 1
    assert np.allclose(got["near_partners"], near @ adjacency + (near @ adjacency).T)
    assert np.allclose(got["near_ties"], near @ adjacency @ near.T)
    assert got["near_ties"].max() > 1  # the world is small: neighbourhoods overlap
    # a subset of rows gives the same values as those columns of every row
    rows = np.array([5, 0, 41, 59, 17])
    part = index.factor_values(np.array([3, 12]), rows)["_realism_inputs"]
    for key, value in vars(part).items():
        assert np.allclose(np.broadcast_to(value, (2, len(rows))), got[key][[3, 12]][:, rows], atol=1e-4), key


def test_fitting_is_deterministic(world):
    first = fit_on_pairs(world, world.edges, seed=7, negatives=20)
    again = fit_on_pairs(world, world.edges, seed=7, negatives=20)
    assert first == again
    assert len(first["coef"]) == len(FEATURES) and np.isfinite(first["coef"]).all()
    assert fit_on_pairs(world, world.edges, seed=8, negatives=20)["coef"] != first["coef"]


def test_the_fit_in_blocks_is_the_fit_in_one(monkeypatch):
    """`fit_logistic` sums its design in blocks (wide experimental samples fit in memory): the same parameters."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4))
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(size=500) > 0).astype(np.float64)
    whole = realism_fit.fit_logistic(x, y)
    monkeypatch.setattr(realism_fit, "CHUNK_VALUES", 5 * 37)  # blocks of 37 rows of 5 columns
    blocks = realism_fit.fit_logistic(x, y)
    assert np.allclose(blocks["coef"], whole["coef"], rtol=1e-9) and np.isclose(blocks["intercept"], whole["intercept"])
    assert abs(whole["coef"][1]) > abs(whole["coef"][3])  # it did fit


def test_extra_features_follow_the_prior_s_for_the_same_pairs(world):
    """`fold_samples(extra=…)`: experiments append features, computed from the fold's graph, to the same rows."""
    edges = np.array(world.edges, dtype=np.int64)
    kept, hidden = edges[:120], edges[120:]
    graphs = []

    def extra(fold_kept):
        graphs.append(fold_kept)
        return lambda queries, candidates: [queries[:, None] * 1000.0 + candidates[None, :]]  # names the pair

    plain = realism_fit.fold_samples(world, kept, hidden, np.random.default_rng(1), 10, 0)
    more = realism_fit.fold_samples(world, kept, hidden, np.random.default_rng(1), 10, 0, extra)
    assert len(graphs) == 1 and np.array_equal(graphs[0], kept)
    assert more[0].shape[1] == len(FEATURES) + 1 and np.array_equal(more[0][:, :-1], plain[0])
    pairs = {(int(v) // 1000, int(v) % 1000) for v, label in zip(more[0][:, -1], more[1], strict=True) if label}
    assert pairs == {(a, b) for a, b in hidden.tolist()} | {(b, a) for a, b in hidden.tolist()}


def test_the_shipped_parameters_name_the_features_and_load():
    params = json.loads(PARAMS_FILE.read_text())
    assert params["features"] == list(FEATURES)
    model = RealismModel.load()
    assert len(model.coef) == len(FEATURES) and np.isfinite(model.coef).all()


def test_the_shipped_parameters_were_fitted_over_the_whole_universe():
    """Negatives from every city the product would rank, not only the cities in some pair: there a city without a
    kept partner must have a hidden one, and `no_partners` learned that (+0.57) instead of how rarely such a
    city gains a partner."""
    params = json.loads(PARAMS_FILE.read_text())
    assert params["fitted_on"]["cities"] > params["fitted_on"]["cities_in_pairs"]
    assert params["coef"][list(FEATURES).index("no_partners")] < 0
