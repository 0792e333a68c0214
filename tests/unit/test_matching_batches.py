"""`MatchIndex.upsert_many` (a fetched batch of events in one index update) leaves the index exactly as the same
upserts one at a time would: the same rows at the same positions, the same columns and counts, the same answers."""

import random
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from citypair_matching.core import CityRow, MatchIndex, Rules
from tests.unit.test_matching_fastpaths import COUNTRIES, random_index, random_rows

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def batch_of_changes(rows: list[CityRow], rng: random.Random) -> list[CityRow]:
    """New cities and new versions of held ones, with repeats: older and equal versions after newer ones, a city
    moved and moved back, one changing country (with partners) and back, new countries, languages, corridors."""
    fresh = [replace(r, id=f"new{i}") for i, r in enumerate(random_rows(40, rng))]
    batch: list[CityRow] = []
    for i, row in enumerate(fresh):
        batch.append(row)
        if i % 3 == 0:  # a newer version later in the batch, then an older one again
            batch.append(replace(row, version=3, population=row.population + 1, themes={}))
            batch.append(replace(row, version=2, name="stale"))
        if i % 7 == 0:  # first seen at version 2: its version 1 afterwards is skipped
            batch[-1] = replace(batch[-1], version=5)
            batch.append(replace(row, version=1))
    for row in rng.sample(rows, 25):
        moved = replace(row, version=2, latitude=row.latitude + 1.5, longitude=row.longitude - 2.0)
        back = replace(row, version=3, latitude=row.latitude, longitude=row.longitude, country_code="ZZ")
        home = replace(row, version=4, country_code=row.country_code, languages=("kk",), corridors=("c", "d"))
        batch += [moved, replace(row, version=1, name="older"), back, replace(back, name="same version"), home]
    for row in rng.sample(rows, 10):
        batch.append(replace(row, version=2, country_code=rng.choice(COUNTRIES + ["AA"]), status="retired"))
    positions = list(range(len(batch)))
    rng.shuffle(positions)
    for a, b in zip(positions[::2], positions[1::2], strict=False):  # some disorder, kept per city by version
        if batch[a].id != batch[b].id:
            batch[a], batch[b] = batch[b], batch[a]
    return batch


def state(idx: MatchIndex) -> dict:
    n, table, links = len(idx.table), idx.table, idx.links
    return {
        "rows": list(table.rows),
        "position": dict(table.position),
        "capacity": table.capacity,
        "columns": {name: column[:n].copy() for name, column in table.cols.items()},
        "vocabularies": [dict(v.index) for v in (table.countries, table.languages, table.corridors)],
        "excluders": set(table.excluders),
        "pair_counts": links.pair_counts.copy(),
        "nodes": list(links.graph.nodes),
        "edges": list(links.graph.edges),
        "near_moved": set(links._near_moved),
    }


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if key == "columns":
            for name in a[key]:
                np.testing.assert_array_equal(a[key][name], b[key][name], err_msg=name)
        elif key == "pair_counts":
            np.testing.assert_array_equal(a[key], b[key])
        else:
            assert a[key] == b[key], key


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "after-answers"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_upsert_many_equals_upserts_one_at_a_time(seed, warm):
    one_by_one, rows, rng = random_index(60, 90, seed)
    batched, _, _ = random_index(60, 90, seed)
    if warm:  # the derived arrays exist, to be patched or dropped
        for idx in (one_by_one, batched):
            idx.ranked_all(idx.positions(), 10, now=NOW)
            idx.table.columns_t()
    changes = batch_of_changes(rows, rng)
    for row in changes:
        one_by_one.upsert(row)
    batched.upsert_many(changes)

    assert_same(state(one_by_one), state(batched))
    everyone = one_by_one.positions()
    assert one_by_one.ranked_all(everyone, 10, now=NOW) == batched.ranked_all(everyone, 10, now=NOW)
    for city in ("new0", "new3", rows[5].id):
        assert one_by_one.suggest(city, 5, now=NOW) == batched.suggest(city, 5, now=NOW)
    # and they keep answering alike as partnerships and more cities arrive
    for idx in (one_by_one, batched):
        idx.add_partnership("new0", "new1")
        idx.upsert_many([replace(rows[0], id="late", version=1), replace(rows[1], version=9, latitude=1.0)])
    assert_same(state(one_by_one), state(batched))
    assert one_by_one.ranked_all(one_by_one.positions(), 10, now=NOW) == batched.ranked_all(
        batched.positions(), 10, now=NOW
    )


def test_upsert_many_skips_what_is_not_newer():
    idx = MatchIndex(capacity=2, rules=Rules())
    first = CityRow(id="x", version=2, name="X", country_code="CN", status="published", themes={})
    idx.upsert_many([first, replace(first, version=1, name="older"), replace(first, name="same version")])
    assert idx.city("x") is first
    generation = idx.links.generation
    idx.upsert_many([replace(first, version=2, name="again"), replace(first, version=1)])
    assert idx.city("x") is first and idx.links.generation == generation  # nothing changed: answers kept
    idx.upsert_many([])
    assert len(idx) == 1
