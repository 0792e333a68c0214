"""The matching core's slice score: two-sided, exclusions, ordering — checked against plain Python."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citypair_matching.core import CityRow, MatchIndex
from citypair_shared.themes import THEME_IDS


def row(city_id: str, themes: dict, *, version: int = 1, status: str = "published") -> CityRow:
    return CityRow(id=city_id, version=version, name=city_id, country_code="CN", status=status, themes=themes)


def gain(offerer: dict, needer: dict) -> float:
    """The share of `needer`'s needs that `offerer` meets, in plain Python."""
    need = sum(v.get("need", 0) for v in needer.values())
    met = sum(min(offerer.get(t, {}).get("offer", 0), v.get("need", 0)) for t, v in needer.items())
    return met / need if need else 0.0


def two_sided(a: dict, b: dict) -> float:
    x, y = gain(b, a), gain(a, b)
    return 2 * x * y / (x + y) if x + y else 0.0


def test_perfect_complements_score_one():
    index = MatchIndex()
    index.upsert(row("a", {"ai": {"offer": 5, "need": 0}, "iot": {"offer": 0, "need": 3}}))
    index.upsert(row("b", {"ai": {"offer": 0, "need": 5}, "iot": {"offer": 3, "need": 0}}))
    [best] = index.suggest("a", 10)
    assert (best.city_id, best.score, best.gain_to_city, best.gain_to_partner) == ("b", 1.0, 1.0, 1.0)


def test_one_sided_pair_is_never_suggested_however_strong():
    index = MatchIndex()
    index.upsert(row("a", {"ai": {"offer": 0, "need": 5}}))
    index.upsert(row("giver", {"ai": {"offer": 5, "need": 0}}))  # gives all, gains nothing
    assert index.suggest("a", 10) == []


def test_self_partners_and_retired_cities_are_excluded():
    themes = {"ai": {"offer": 3, "need": 3}}
    index = MatchIndex()
    for city in ("a", "partner", "retired", "open"):
        index.upsert(row(city, themes, status="retired" if city == "retired" else "published"))
    index.add_partnership("a", "partner")
    assert [s.city_id for s in index.suggest("a", 10)] == ["open"]


def test_older_snapshot_never_overwrites_newer():
    index = MatchIndex()
    index.upsert(row("a", {"ai": {"offer": 0, "need": 5}, "iot": {"offer": 5, "need": 0}}, version=2))
    index.upsert(row("b", {"ai": {"offer": 5, "need": 0}, "iot": {"offer": 0, "need": 5}}, version=3))
    index.upsert(row("b", {"ai": {"offer": 0, "need": 0}}, version=2))
    assert index.city("b").version == 3
    assert index.suggest("a", 1)[0].city_id == "b"


def test_index_grows_past_its_capacity():
    index = MatchIndex(capacity=2)
    for i in range(50):
        index.upsert(row(f"c{i}", {"ai": {"offer": i % 6, "need": 5 - i % 6}, "iot": {"offer": 3, "need": 3}}))
    assert len(index) == 50
    assert len(index.suggest("c0", 100)) > 0


levels = st.integers(min_value=0, max_value=5)
theme_maps = st.dictionaries(st.sampled_from(THEME_IDS), st.fixed_dictionaries({"offer": levels, "need": levels}))


@settings(max_examples=60, deadline=None)
@given(cities=st.lists(theme_maps, min_size=2, max_size=12), k=st.integers(min_value=1, max_value=12))
def test_ranking_matches_a_plain_python_computation(cities, k):
    index = MatchIndex(capacity=4)
    for i, themes in enumerate(cities):
        index.upsert(row(f"c{i}", themes))
    expected = sorted(
        (
            (two_sided(cities[0], themes), i)
            for i, themes in enumerate(cities)
            if i and two_sided(cities[0], themes) > 0
        ),
        key=lambda pair: (-pair[0], pair[1]),
    )[:k]
    got = index.suggest("c0", k)
    assert [s.score for s in got] == pytest.approx([score for score, _ in expected], abs=1e-5)
    for suggestion in got:
        other = cities[int(suggestion.city_id[1:])]
        assert suggestion.gain_to_city == pytest.approx(gain(other, cities[0]), abs=1e-5)
        assert suggestion.gain_to_partner == pytest.approx(gain(cities[0], other), abs=1e-5)
