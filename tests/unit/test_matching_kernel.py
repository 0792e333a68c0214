"""The compiled ranking kernel against the numpy reference (`factor_values`, `score`, `check_masks`): the same
score for every pair, -inf exactly where a constraint fails, and top-k lists equal to a full sort."""

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from citypair_matching.core import FACTORS, MatchIndex, Rules, Weights
from citypair_matching.realism import FEATURES, RealismModel
from tests.bench import naive
from tests.unit.test_matching_fastpaths import CHANGES, NOW, random_index, random_rows


def reference(idx: MatchIndex, block: np.ndarray, rows: np.ndarray) -> np.ndarray:
    values = idx.factor_values(block, rows)
    scores = idx.score(values)
    for mask in idx.check_masks(block, rows, values, NOW).values():
        scores = np.where(mask, scores, -np.inf)
    return scores


def awkward_index(seed: int, rules: Rules | None = None) -> MatchIndex:
    """Partnerships, live and expired declines, exclusions, drafts, full cities and cities without themes."""
    idx, rows, rng = random_index(70, 120, seed)
    idx.rules = rules or Rules()
    for r in rng.sample(rows, 6):
        idx.upsert(replace(idx.city(r.id), version=2, excluded_countries=(rng.choice(["CN", "KZ", "RU"]),)))
    for r in rng.sample(rows, 4):
        idx.upsert(replace(idx.city(r.id), version=3, status="draft"))
    for r in rng.sample(rows, 4):
        idx.upsert(replace(idx.city(r.id), version=4, themes={}))
    for _ in range(10):
        a, b = rng.sample(rows, 2)
        idx.add_decline(a.id, b.id, NOW - timedelta(days=rng.choice([3, 200, 400])))
    for r in rows:
        if r.id in idx:
            row = idx.city(r.id)
            eligible = replace(row, version=row.version + 10, population=rng.choice([10_000, 2_000_000]))
            idx.upsert(eligible)
    return idx


RULES = [Rules(), Rules(allow_same_country=True), Rules(min_population=100_000), Rules(required_theme="ai")]


@pytest.mark.parametrize("rules", RULES, ids=["default", "same-country", "min-population", "required-theme"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_scores_equal_the_reference(seed, rules):
    idx = awkward_index(seed, rules)
    everyone = idx.positions()
    got = idx.allowed_scores(everyone, everyone, now=NOW)
    want = reference(idx, everyone, everyone)
    assert np.array_equal(np.isinf(got), np.isinf(want))
    assert np.isfinite(want).sum() >= 10  # allowed pairs to compare
    finite = np.isfinite(want)
    assert np.allclose(got[finite], want[finite], atol=1e-5)
    # a subset of candidates (a filter) scores the same pairs the same way
    cols = everyone[::3]
    assert np.allclose(idx.allowed_scores(everyone[:9], cols, now=NOW), want[:9][:, cols], atol=1e-5)


@pytest.mark.parametrize("min_score", [0.0, 0.35, 0.5])
@pytest.mark.parametrize("seed", [3, 4])
def test_ranked_equals_a_full_sort_of_the_reference(seed, min_score):
    idx = awkward_index(seed)
    everyone = idx.positions()
    want = reference(idx, everyone, everyone)
    for k in (1, 5, 30):
        for i, top in enumerate(idx.ranked(everyone, k, min_score=min_score, now=NOW)):
            allowed = [(-s, j) for j, s in enumerate(want[i]) if np.isfinite(s) and s >= min_score]
            best = sorted(allowed)[:k]
            assert [p for p, _ in top] == [j for _, j in best] or np.allclose(
                [s for _, s in top], [-s for s, _ in best], atol=1e-5
            )  # equal lists, or only near-ties (within float32 rounding) ordered differently
            assert len(top) == len(best)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_realism_bound_never_drops_a_pair(seed):
    """Rankings where the prior weighs most, under random priors (any sign on any feature), equal a full sort."""
    idx = awkward_index(seed)
    rng = np.random.default_rng(seed)
    n = len(FEATURES)
    idx.realism = RealismModel("random", rng.normal(size=n), rng.uniform(0.5, 2, size=n), rng.normal(size=n), -2.0)
    weights = {**dict.fromkeys(FACTORS, 0.02), "complementarity": 0.2, "shared_priorities": 0.05, "distance": 0.1}
    weights |= {"realism": 0.8, "hub_damping": -0.02}  # the prior weighs most
    idx.weights = Weights("test", tuple(weights[name] for name in FACTORS))
    idx._kernel = None
    everyone = idx.positions()
    want = reference(idx, everyone, everyone)
    for candidates in (everyone, everyone[::2]):
        for k in (1, 3, 10):
            for i, top in enumerate(idx.ranked(everyone, k, candidates=candidates, now=NOW)):
                allowed = sorted((-want[i, j], j) for j in candidates if np.isfinite(want[i, j]))[:k]
                assert np.allclose([s for _, s in top], [-s for s, _ in allowed], atol=1e-5), (i, k)


def test_ties_go_to_the_lower_position_and_the_bound_never_drops_a_pair():
    idx, rows, _ = random_index(40, 0, 5)
    twin = idx.city(rows[1].id)
    for r in rows[2:6]:  # four identical candidates for city 0: equal scores
        idx.upsert(replace(twin, id=r.id, name=r.name, version=9))
    scores = idx.allowed_scores(np.array([0]), idx.positions(), now=NOW)[0]
    top = idx.ranked(np.array([0]), 39, now=NOW)[0]
    assert [p for p, _ in top] == sorted(np.flatnonzero(np.isfinite(scores)), key=lambda j: (-scores[j], j))


NEW_CITIES = [
    ("a new city, then its partnership", lambda idx, rows, rng: [
        idx.upsert(replace(random_rows(1, rng)[0], id="late")),
        idx.add_partnership("late", rows[4].id),
    ]),
    ("a partnership recorded before its city", lambda idx, rows, rng: [
        idx.add_partnership("early", rows[6].id),
        idx.upsert(replace(random_rows(1, rng)[0], id="early")),
    ]),
    ("cities past the index's capacity", lambda idx, rows, rng: [
        idx.upsert(replace(r, id=f"more{i}")) for i, r in enumerate(random_rows(40, rng))
    ]),
]  # fmt: skip


@pytest.mark.parametrize(("what", "change"), CHANGES + NEW_CITIES, ids=[c[0] for c in CHANGES + NEW_CITIES])
def test_kernel_follows_each_change_of_a_ranked_index(what, change):
    """The kernel's inputs (column copies, graph arrays) are kept between calls and patched by changes."""
    idx, rows, rng = random_index(60, 80, seed=6)
    everyone = idx.positions()
    idx.ranked(everyone, 5, now=NOW)  # builds and keeps the inputs
    change(idx, rows, rng)
    everyone = idx.positions()
    got = idx.allowed_scores(everyone, everyone, now=NOW)
    idx.links._csr, idx.table.transposed, idx._kernel = None, None, None  # the reference from scratch
    want = reference(idx, everyone, everyone)
    assert np.array_equal(np.isinf(got), np.isinf(want)), what
    finite = np.isfinite(want)
    assert np.allclose(got[finite], want[finite], atol=1e-5), what


@pytest.mark.parametrize("seed", [0, 1])
def test_kernel_top10_equals_a_plain_python_scorer(seed):
    """The benchmark's naive baseline scores every factor again in plain Python (math and networkx): an
    independent reading of the formulas. Scores agree up to the core's float32 coordinates."""
    idx, rows, _ = random_index(150, 220, seed)
    core = idx.ranked_all(idx.positions(), 10, now=NOW)
    plain = naive.every_factor(rows, list(idx.graph.edges()), idx)
    assert sum(map(len, plain.values())) > 1000
    for position, top in core.items():
        want = plain[rows[position].id]
        assert len(top) == len(want)
        assert np.allclose([s for _, s in top], [s for s, _ in want], atol=1e-3)
