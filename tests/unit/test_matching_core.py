"""The matching core: factors, constraints, faithful explanations, ordering — checked against plain Python."""

import json
import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citypair_matching.core import CHECKS, FACTORS, CityRow, MatchIndex, Rules, Weights
from citypair_matching.realism import RealismModel
from citypair_matching.rows import utc_offset_hours
from citypair_shared.themes import THEME_IDS

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def row(city_id: str, themes: dict, *, version: int = 1, status: str = "published", **extra) -> CityRow:
    base = {"name": city_id, "country_code": "CN" if city_id == "a" else "KZ", "latitude": 40.0, "longitude": 80.0}
    return CityRow(id=city_id, version=version, status=status, themes=themes, **{**base, **extra})


def index(**rules) -> MatchIndex:
    return MatchIndex(rules=Rules(**rules), realism=RealismModel.neutral())


def gain(offerer: dict, needer: dict) -> float:
    """The share of `needer`'s needs that `offerer` meets, in plain Python."""
    need = sum(v.get("need", 0) for v in needer.values())
    met = sum(min(offerer.get(t, {}).get("offer", 0), v.get("need", 0)) for t, v in needer.items())
    return met / need if need else 0.0


def two_sided(a: dict, b: dict) -> float:
    x, y = gain(b, a), gain(a, b)
    return 2 * x * y / (x + y) if x + y else 0.0


XIAN = {"ai": {"offer": 5, "need": 1}, "ecommerce": {"offer": 1, "need": 4}}
ALMATY = {"ai": {"offer": 1, "need": 5}, "ecommerce": {"offer": 4, "need": 1}}


def test_perfect_complements_rank_first_with_full_complementarity():
    idx = index()
    idx.upsert(row("a", {"ai": {"offer": 5, "need": 0}, "iot": {"offer": 0, "need": 3}}))
    idx.upsert(row("b", {"ai": {"offer": 0, "need": 5}, "iot": {"offer": 3, "need": 0}}))
    idx.upsert(row("half", {"ai": {"offer": 0, "need": 5}, "iot": {"offer": 1, "need": 0}}))
    best, second = idx.suggest("a", 10)
    assert (best.city_id, best.gain_to_city, best.gain_to_partner) == ("b", 1.0, 1.0)
    assert best.contributions["complementarity"] == pytest.approx(idx.weights.factors()["complementarity"])
    assert best.score > second.score


def test_one_sided_pair_is_never_suggested_however_strong():
    idx = index()
    idx.upsert(row("a", {"ai": {"offer": 0, "need": 5}}))
    idx.upsert(row("giver", {"ai": {"offer": 5, "need": 0}}))  # gives all, gains nothing
    assert idx.suggest("a", 10) == []
    check = {c.name: c for c in idx.explain("a", "giver").checks}["both_gain"]
    assert not check.passed and "giver gains 0.00" in check.detail


def test_contributions_add_up_to_the_score_and_name_the_themes():
    idx = MatchIndex()  # with the fitted realism prior
    idx.upsert(row("a", XIAN, name="Xi'an", timezone="Asia/Shanghai", languages=("zh",), corridors=("x",)))
    idx.upsert(row("b", ALMATY, name="Almaty", timezone="Asia/Almaty", languages=("zh", "kk"), corridors=("x",)))
    e = idx.explain("a", "b")
    assert set(e.contributions) == set(FACTORS)
    assert sum(e.contributions.values()) == pytest.approx(e.score, abs=1e-5)
    for name, weight in idx.weights.factors().items():
        assert e.contributions[name] == pytest.approx(weight * e.values[name], abs=1e-6)
    [s] = idx.suggest("a", 1)
    assert s.score == e.score and s.contributions == e.contributions
    assert e.themes_to_b[0].text == "Xi'an offers ai at 5, Almaty needs it at 5"
    assert e.values["corridor"] == 1.0 and e.values["language"] == 1.0


def test_each_factor_is_named_once_and_weighed_in_that_order(tmp_path):
    """`FACTORS` is the one list: the reference computes exactly those values, the weights are read in that order
    whatever the file's order, and a weights file that names other factors is refused."""
    idx = MatchIndex()
    idx.upsert(row("a", XIAN))
    idx.upsert(row("b", ALMATY))
    values = idx.factor_values(np.array([0]), np.array([1]))
    assert [name for name in values if not name.startswith("_")] == list(FACTORS)
    shuffled = {"version": "t", **{name: float(i) for i, name in reversed(list(enumerate(FACTORS)))}}
    (tmp_path / "weights.json").write_text(json.dumps(shuffled))
    weights = Weights.load(tmp_path / "weights.json")
    assert list(weights.factors()) == list(FACTORS) and weights.values == tuple(map(float, range(len(FACTORS))))
    (tmp_path / "weights.json").write_text(json.dumps({**shuffled, "novelty": 0.1}))
    with pytest.raises(ValueError, match="novelty"):
        Weights.load(tmp_path / "weights.json")


def test_score_is_symmetric():
    idx = MatchIndex()
    idx.upsert(row("a", XIAN, population=10_000_000))
    idx.upsert(row("b", ALMATY, latitude=10.0, population=50_000))
    assert idx.explain("a", "b").score == pytest.approx(idx.explain("b", "a").score, abs=1e-6)


def test_distance_decays_and_timezone_overlap_comes_from_the_iana_zone():
    idx = index()
    idx.upsert(row("a", XIAN, latitude=0.0, longitude=0.0, timezone="Europe/London"))
    idx.upsert(row("near", ALMATY, latitude=0.0, longitude=1.0, timezone="Europe/London"))
    idx.upsert(row("far", ALMATY, latitude=0.0, longitude=90.0, timezone="Asia/Tokyo"))
    near, far = idx.explain("a", "near"), idx.explain("a", "far")
    assert near.distance_km == pytest.approx(111.2, abs=0.5)
    assert near.values["distance"] > far.values["distance"]
    assert near.values["timezone"] == 1.0 and far.values["timezone"] == 0.0  # 9 hours apart
    assert utc_offset_hours("Asia/Kolkata", 0.0) == 5.5
    assert utc_offset_hours(None, 76.9) == 5


def test_shared_priorities_and_country_affinity_and_network():
    idx = index()
    idx.upsert(row("a", {"ai": {"offer": 3, "need": 4}}, country_code="CN"))
    idx.upsert(row("b", {"ai": {"offer": 3, "need": 4}}, country_code="KZ"))
    for i in range(3):
        idx.upsert(row(f"cn{i}", {}, country_code="CN"))
        idx.upsert(row(f"kz{i}", {}, country_code="KZ"))
        idx.add_partnership(f"cn{i}", f"kz{i}")
    idx.add_partnership("a", "hub")
    idx.add_partnership("b", "hub")
    idx.upsert(row("hub", {}, country_code="UZ"))
    e = idx.explain("a", "b")
    assert e.values["shared_priorities"] == 1.0 and e.shared_needs == ["ai"]
    assert e.values["country_affinity"] == pytest.approx(math.log1p(3) / math.log1p(50), abs=1e-5)
    assert e.values["network"] == pytest.approx((1 / math.log(2)) / (1 + 1 / math.log(2)), abs=1e-5)
    assert e.values["hub_damping"] > 0 and e.contributions["hub_damping"] == 0  # weight 0 since 2026.4


def _failed(idx, a, b, now=NOW):
    return {c.name for c in idx.explain(a, b, now=now).checks if not c.passed}


def test_each_constraint_is_reported_and_enforced():
    idx = index(min_population=1000)
    idx.upsert(row("a", XIAN, population=5000, capacity=2))
    for name, extra in {
        "ok": {},
        "partner": {},
        "declined": {},
        "full": {"capacity": 0},
        "excluded": {"excluded_countries": ("CN",)},
        "same": {"country_code": "CN"},
        "small": {"population": 10},
        "retired": {"status": "retired"},
    }.items():
        idx.upsert(row(name, ALMATY, **{"population": 5000, **extra}))
    idx.add_partnership("a", "partner")
    idx.add_decline("a", "declined", NOW - timedelta(days=30))
    assert [s.city_id for s in idx.suggest("a", 20, now=NOW)] == ["ok"]
    assert _failed(idx, "a", "ok") == set()
    assert _failed(idx, "a", "a") >= {"not_itself"}
    assert _failed(idx, "a", "partner") == {"not_partners"}
    assert _failed(idx, "a", "declined") == {"not_declined"}
    assert _failed(idx, "a", "declined", now=NOW + timedelta(days=400)) == set()
    assert _failed(idx, "a", "full") == {"partner_capacity"}
    assert _failed(idx, "a", "excluded") == {"countries_not_excluded"}
    assert _failed(idx, "excluded", "a") == {"countries_not_excluded"}
    assert _failed(idx, "a", "same") == {"same_country_allowed"}
    assert _failed(idx, "a", "small") == {"eligible"}
    eligible = {c.name: c for c in idx.explain("a", "small").checks}["eligible"]
    assert "population 10 < 1,000" in eligible.detail  # and as a code and params, to be said in any language:
    failure = {"code": "population_below", "params": {"city": "small", "population": 10, "min_population": 1000}}
    assert (eligible.code, eligible.params) == ("ineligible", {"failures": [failure]})
    assert _failed(idx, "a", "retired") == {"published"}
    assert set(CHECKS) == {c.name for c in idx.explain("a", "ok").checks}
    idx.add_partnership("a", "ok")  # now at capacity 2
    assert idx.suggest("a", 20, now=NOW) == []
    assert "city_capacity" in _failed(idx, "a", "same")


def test_same_country_allowed_and_required_theme_rules():
    idx = index(allow_same_country=True, required_theme="iot")
    idx.upsert(row("a", {**XIAN, "iot": {"offer": 1, "need": 0}}))
    idx.upsert(row("b", {**ALMATY, "iot": {"offer": 0, "need": 1}}, country_code="CN"))
    idx.upsert(row("c", ALMATY, country_code="CN"))
    assert [s.city_id for s in idx.suggest("a", 5)] == ["b"]
    assert "no offer or need in iot" in {c.name: c for c in idx.explain("a", "c").checks}["eligible"].detail


def test_filters_theme_corridor_country():
    idx = index()
    idx.upsert(row("a", XIAN))
    idx.upsert(row("b", ALMATY, corridors=("maritime_silk_road",), country_code="PK"))
    idx.upsert(row("c", {**ALMATY, "iot": {"offer": 2, "need": 0}}))
    assert [s.city_id for s in idx.suggest("a", 5, corridor="maritime_silk_road")] == ["b"]
    assert [s.city_id for s in idx.suggest("a", 5, theme="iot")] == ["c"]
    assert [s.city_id for s in idx.suggest("a", 5, country="PK")] == ["b"]


def test_older_snapshot_never_overwrites_newer():
    idx = index()
    idx.upsert(row("a", {"ai": {"offer": 0, "need": 5}, "iot": {"offer": 5, "need": 0}}, version=2))
    idx.upsert(row("b", {"ai": {"offer": 5, "need": 0}, "iot": {"offer": 0, "need": 5}}, version=3))
    idx.upsert(row("b", {"ai": {"offer": 0, "need": 0}}, version=2))
    assert idx.city("b").version == 3
    assert idx.suggest("a", 1)[0].city_id == "b"


def test_index_grows_past_its_capacity():
    idx = MatchIndex(capacity=2)
    for i in range(50):
        idx.upsert(
            row(
                f"c{i}",
                {"ai": {"offer": i % 6, "need": 5 - i % 6}, "iot": {"offer": 3, "need": 3}},
                country_code=f"X{i}",
            )
        )
    assert len(idx) == 50
    assert len(idx.suggest("c0", 100)) > 0


levels = st.integers(min_value=0, max_value=5)
theme_maps = st.dictionaries(st.sampled_from(THEME_IDS), st.fixed_dictionaries({"offer": levels, "need": levels}))


@settings(max_examples=60, deadline=None)
@given(cities=st.lists(theme_maps, min_size=2, max_size=12), k=st.integers(min_value=1, max_value=12))
def test_complementarity_matches_a_plain_python_computation(cities, k):
    idx = MatchIndex(capacity=4, realism=RealismModel.neutral())
    for i, themes in enumerate(cities):
        idx.upsert(row(f"c{i}", themes, country_code=f"C{i}"))
    got = idx.suggest("c0", k)
    expected = sorted(two_sided(cities[0], t) for i, t in enumerate(cities) if i and two_sided(cities[0], t) > 0)
    assert len(got) == min(k, len(expected))
    assert [s.score for s in got] == sorted((s.score for s in got), reverse=True)
    for suggestion in got:
        other = cities[int(suggestion.city_id[1:])]
        assert suggestion.gain_to_city == pytest.approx(gain(other, cities[0]), abs=1e-5)
        assert suggestion.gain_to_partner == pytest.approx(gain(cities[0], other), abs=1e-5)
        weight = idx.weights.factors()["complementarity"]
        assert suggestion.contributions["complementarity"] == pytest.approx(
            weight * two_sided(cities[0], other), abs=1e-5
        )
        assert sum(suggestion.contributions.values()) == pytest.approx(suggestion.score, abs=1e-5)


def _spread_index(seed: int) -> MatchIndex:
    rng = random.Random(seed)
    idx = MatchIndex(capacity=8, realism=RealismModel.neutral())
    for i in range(150):
        themes = {t: {"offer": rng.randint(0, 5), "need": rng.randint(0, 5)} for t in rng.sample(THEME_IDS, 6)}
        place = {"latitude": rng.uniform(0, 55), "longitude": rng.uniform(20, 135)}
        idx.upsert(row(f"c{i}", themes, country_code=rng.choice(["CN", "KZ", "RU", "TR"]), **place))
    return idx


def test_ranked_all_answers_alike_on_one_thread_and_on_two():
    """Blocks ranked on two threads write the same rows as one thread ranking them in turn (blocks of 16: ten
    blocks, so the pool hands them out), and every row equals that city's own ranking."""
    one, two = _spread_index(3), _spread_index(3)
    everyone = one.positions()
    alone = one.ranked_all(everyone, 10, block_size=16, threads=1, now=NOW)
    paired = two.ranked_all(everyone, 10, block_size=16, threads=2, now=NOW)
    assert np.array_equal(alone.partners, paired.partners) and np.array_equal(alone.scores, paired.scores)
    assert dict(alone.items()) == dict(paired.items())
    assert sum(map(len, alone.values())) > 1000
    assert dict(alone.items()) == dict(zip(everyone.tolist(), one.ranked(everyone, 10, now=NOW), strict=True))
    # a narrower answer comes from the kept arrays and equals a fresh ranking
    assert one.ranked_all(everyone, 4, min_score=0.3, now=NOW).partners is alone.partners
    assert dict(one.ranked_all(everyone, 4, min_score=0.3, now=NOW).items()) == dict(
        zip(everyone.tolist(), one.ranked(everyone, 4, min_score=0.3, now=NOW), strict=True)
    )


def test_kept_top_lists_follow_a_decline_ending_and_nothing_else_of_the_clock():
    idx = index()
    idx.upsert(row("a", XIAN))
    idx.upsert(row("b", ALMATY))
    declined_at = NOW - timedelta(days=300)
    idx.add_decline("a", "b", declined_at)
    everyone = idx.positions()
    pos_a, pos_b = idx.table.position["a"], idx.table.position["b"]
    ends = declined_at + timedelta(days=365)
    before = idx.ranked_all(everyone, 5, now=ends - timedelta(seconds=1))
    assert before[pos_a] == []
    kept = idx.ranked_all(everyone, 5, now=ends - timedelta(days=10))  # another instant, the same declines in force
    assert kept is before or dict(kept) == dict(before)
    after = idx.ranked_all(everyone, 5, now=ends)
    assert [p for p, _ in after[pos_a]] == [pos_b]
