"""The core's fast paths against the slow, obvious computation: the kept top-k lists, the block
Adamic-Adar and the incremental country-pair counts (the compiled kernel: test_matching_kernel.py)."""

import random
from dataclasses import replace
from datetime import UTC, datetime

import networkx as nx
import numpy as np
import pytest

from citypair_matching.core import CityRow, MatchIndex
from citypair_matching.graph import NEAR_IN_PLACE
from citypair_matching.reference import network_block
from citypair_shared.themes import THEME_IDS

NOW = datetime(2026, 11, 27, tzinfo=UTC)
COUNTRIES = ["CN", "KZ", "UZ", "RU", "TR"]


def random_rows(n: int, rng: random.Random) -> list[CityRow]:
    rows = []
    for i in range(n):
        themes = {t: {"offer": rng.randint(0, 5), "need": rng.randint(0, 5)} for t in rng.sample(THEME_IDS, 5)}
        rows.append(
            CityRow(
                id=f"c{i}",
                version=1,
                name=f"City {i}",
                country_code=rng.choice(COUNTRIES),
                status="published",
                themes=themes,
                latitude=rng.uniform(0, 55),
                longitude=rng.uniform(20, 135),
                population=rng.randint(50_000, 5_000_000),
                languages=(rng.choice(["zh", "ru", "en"]),),
                corridors=(rng.choice(["a", "b"]),),
                capacity=rng.randint(3, 8),
            )
        )
    return rows


def random_index(n: int, edges: int, seed: int) -> tuple[MatchIndex, list[CityRow], random.Random]:
    rng = random.Random(seed)
    rows = random_rows(n, rng)
    idx = MatchIndex(capacity=8)  # grows; with the fitted realism prior
    for r in rows:
        idx.upsert(r)
    for _ in range(edges):
        a, b = rng.sample(rows, 2)
        idx.add_partnership(a.id, b.id)
    return idx, rows, rng


def fresh(idx: MatchIndex, k: int, min_score: float = 0.0) -> dict:
    everyone = idx.positions()
    return dict(
        zip(everyone.tolist(), idx.ranked(everyone, k, candidates=everyone, min_score=min_score, now=NOW), strict=True)
    )


def close(got: dict, want: dict) -> bool:
    if got.keys() != want.keys():
        return False
    for p in want:
        if [q for q, _ in got[p]] != [q for q, _ in want[p]]:
            return False
        if not np.allclose([s for _, s in got[p]], [s for _, s in want[p]], atol=1e-6):
            return False
    return True


# each change: (description, function(idx, rows, rng))
CHANGES = [
    ("themes of one city", lambda idx, rows, rng: idx.upsert(replace(rows[3], version=2, themes={}))),
    (
        "mirror one city's needs",
        lambda idx, rows, rng: idx.upsert(
            replace(
                rows[5],
                version=3,
                themes={k: {"offer": v["need"], "need": v["offer"]} for k, v in rows[7].themes.items()},
            )
        ),
    ),
    ("country of one city", lambda idx, rows, rng: idx.upsert(replace(rows[2], version=4, country_code="PK"))),
    ("a new partnership", lambda idx, rows, rng: idx.add_partnership(rows[0].id, rows[1].id)),
    ("a new city", lambda idx, rows, rng: idx.upsert(replace(random_rows(1, rng)[0], id="new"))),
    ("a decline", lambda idx, rows, rng: idx.add_decline(rows[8].id, rows[9].id, NOW)),
    ("unpublished", lambda idx, rows, rng: idx.upsert(replace(rows[10], version=5, status="draft"))),
    ("a city moves", lambda idx, rows, rng: idx.upsert(replace(rows[4], version=6, latitude=rows[9].latitude + 0.01))),
]


@pytest.mark.parametrize(("what", "change"), CHANGES, ids=[c[0] for c in CHANGES])
def test_kept_top_k_equals_a_fresh_ranking_after_each_change(what, change):
    idx, rows, rng = random_index(60, 80, seed=1)
    before = idx.ranked_all(idx.positions(), 10, now=NOW)
    assert close(before, fresh(idx, 10))
    assert idx._topk[1]  # kept
    change(idx, rows, rng)
    assert idx._topk[0] != idx.links.generation  # dropped by the change
    after = idx.ranked_all(idx.positions(), 10, now=NOW)
    assert close(after, fresh(idx, 10)), what
    # a smaller k / higher min_score served from the kept lists equals a fresh ranking too
    assert close(idx.ranked_all(idx.positions(), 4, min_score=0.3, now=NOW), fresh(idx, 4, 0.3))


def test_an_older_snapshot_keeps_the_kept_lists():
    idx, rows, _ = random_index(30, 20, seed=2)
    idx.upsert(replace(rows[0], version=3))
    idx.ranked_all(idx.positions(), 5, now=NOW)
    idx.upsert(replace(rows[0], version=2, themes={}))  # ignored: older
    assert idx._topk[1] and idx._topk[0] == idx.links.generation


@pytest.mark.parametrize(("n", "edges", "seed"), [(12, 20, 0), (40, 90, 1), (80, 60, 2), (25, 150, 3)])
def test_block_adamic_adar_equals_networkx(n, edges, seed):
    idx, rows, _ = random_index(n, edges, seed)
    everyone = idx.positions()
    aa, common = network_block(idx.links, everyone, None, (n, n))
    ids = [r.id for r in rows]
    pairs = [(a, b) for a in ids for b in ids if a != b]
    for a, b, want in nx.adamic_adar_index(idx.graph, pairs):
        assert aa[idx.position(a), idx.position(b)] == pytest.approx(want, rel=1e-5, abs=1e-6)
        assert common[idx.position(a), idx.position(b)] == len(list(nx.common_neighbors(idx.graph, a, b)))
    # a subset of columns (the candidate path) gives the same values
    cols = everyone[::3]
    column = np.full(n, -1, dtype=np.int64)
    column[cols] = np.arange(len(cols))
    sub, _ = network_block(idx.links, everyone[:7], column, (7, len(cols)))
    assert np.allclose(sub, aa[:7][:, cols])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_incremental_country_counts_equal_a_full_recount(seed):
    idx, rows, rng = random_index(40, 70, seed)
    versions = {r.id: 1 for r in rows}
    idx.links.hops()  # kept, and moved by each change of country below
    for step in range(30):
        r = rng.choice(rows)
        versions[r.id] += 1
        idx.upsert(replace(idx.city(r.id), version=versions[r.id], country_code=rng.choice([*COUNTRIES, "PK", "MN"])))
        if step % 3 == 0:
            a, b = rng.sample(rows, 2)
            idx.add_partnership(a.id, b.id)
            idx.links.hops()
    kept = [array.copy() for array in idx.links.hops()]
    idx.links._hops = None
    assert all(np.array_equal(x, y) for x, y in zip(kept, idx.links.hops(), strict=True))
    again = MatchIndex(capacity=8)  # the same cities and partnerships, counted from scratch
    for r in rows:
        again.upsert(idx.city(r.id))
    for a, b in idx.graph.edges():
        again.add_partnership(a, b)

    def by_code(index):  # country indices follow the order countries first appear in: compare nonzero counts by code
        codes, c = index.table.countries.index, index.table.cols
        pairs = {(x, y): index.links.pair_counts[i, j] for x, i in codes.items() for y, j in codes.items()}
        partners_in = {(r.id, x): c["partners_in"][index.position(r.id), i] for r in rows for x, i in codes.items()}
        nonzero = {key: int(v) for key, v in (pairs | partners_in).items() if v}
        return nonzero, c["degree"][: len(index)].tolist()

    assert by_code(again) == by_code(idx)


def near_of(index: MatchIndex) -> np.ndarray:
    """Each city's near cities, (cities, NEAR_CITIES), as the index keeps them."""
    index.links.near()
    return index.links._near_lists[1]


def from_scratch(index: MatchIndex, city_ids: list[str]) -> MatchIndex:
    again = MatchIndex(capacity=4)
    for city_id in city_ids:
        again.upsert(index.city(city_id))
    return again


@pytest.mark.parametrize("changes", [1, 3, NEAR_IN_PLACE + 4], ids=["one", "a few: in place", "many: rebuilt"])
def test_near_cities_follow_new_and_moved_cities(changes):
    idx, rows, rng = random_index(60, 80, seed=2)
    ids = [r.id for r in rows]
    before = near_of(idx).copy()
    for i in range(changes):
        if i % 2:  # a new city beside an old one
            ids.append(f"late{i}")
            idx.upsert(replace(random_rows(1, rng)[0], id=ids[-1], latitude=rows[i].latitude + 0.01))
        else:  # a city moves beside another
            moved = rows[4 + i]
            idx.upsert(
                replace(moved, version=6, latitude=rows[20 + i].latitude + 0.01, longitude=rows[20 + i].longitude)
            )
    assert not np.array_equal(near_of(idx)[: len(before)], before)
    assert np.array_equal(near_of(idx), near_of(from_scratch(idx, ids)))


def test_near_cities_follow_every_change_while_an_index_grows_from_one_city():
    rng = random.Random(4)
    idx, rows = MatchIndex(capacity=4), random_rows(26, rng)
    for i, r in enumerate(rows):
        idx.upsert(r)
        idx.links.near()  # kept: the next change is applied to the kept lists
        moved = replace(idx.city(rows[rng.randrange(i + 1)].id), latitude=rng.uniform(0, 55))
        idx.upsert(replace(moved, version=idx.city(moved.id).version + 1))
        assert np.array_equal(near_of(idx), near_of(from_scratch(idx, [x.id for x in rows[: i + 1]]))), i


@pytest.mark.parametrize("seed", range(4))
def test_near_cities_follow_rounds_of_a_few_new_and_moved_cities_in_a_crowd(seed):
    """Many cities gain the newcomer in place of their farthest (a dense region: 300 cities in a small box, so each
    new or moved city enters dozens of lists); after every round of up to NEAR_IN_PLACE changes, the kept lists
    are those of a new index."""
    rng = random.Random(seed)
    rows = [replace(r, latitude=rng.uniform(40, 42), longitude=rng.uniform(70, 72)) for r in random_rows(300, rng)]
    idx = MatchIndex(capacity=8)
    for r in rows:
        idx.upsert(r)
    ids = [r.id for r in rows]
    for round_ in range(12):
        idx.links.near()  # kept: the round's changes are applied to these lists
        for i in range(rng.randint(1, NEAR_IN_PLACE)):
            place = {"latitude": rng.uniform(40, 42), "longitude": rng.uniform(70, 72)}
            if rng.random() < 0.5:
                ids.append(f"new{round_}-{i}")
                idx.upsert(replace(random_rows(1, rng)[0], id=ids[-1], **place))
            else:
                moved = idx.city(rng.choice(ids))
                idx.upsert(replace(moved, version=moved.version + 1, **place))
        assert np.array_equal(near_of(idx), near_of(from_scratch(idx, ids))), round_
