"""The naive baselines of `matching.py`: a networkx complete graph, every pair scored in plain Python.

`complementarity_only` scores the two-sided complementarity alone (the lightest baseline). `every_factor`
computes the score the core computes, every factor and the realism prior, pair by pair with `math` and
networkx; the benchmark checks that its top 10 equals the core's, so both do the same work. Written apart from
`scoring` on purpose: a second, plain reading of the formulas.
"""

import math
from collections import Counter, defaultdict

import networkx as nx

from citypair_matching.core import CityRow, MatchIndex
from citypair_matching.graph import NEAR_CITIES
from citypair_matching.rows import utc_offset_hours
from citypair_matching.scoring import (
    AFFINITY_SATURATION,
    DISTANCE_SCALE_KM,
    EARTH_RADIUS_KM,
    HUB_SATURATION,
    WORKDAY_HOURS,
)


def complementarity_only(rows: list[CityRow], k: int = 10) -> dict[str, list]:
    graph = nx.complete_graph([r.id for r in rows])
    by_id = {r.id: r for r in rows}

    def gain(giver, taker):
        need = sum(v["need"] for v in taker.themes.values())
        met = sum(min(giver.themes.get(t, {}).get("offer", 0), v["need"]) for t, v in taker.themes.items())
        return met / need if need else 0.0

    for a, b in graph.edges():
        x, y = gain(by_id[b], by_id[a]), gain(by_id[a], by_id[b])
        graph[a][b]["score"] = 2 * x * y / (x + y) if x + y else 0.0
    return {c: sorted(graph[c].items(), key=lambda kv: -kv[1]["score"])[:k] for c in graph}


def every_factor(rows: list[CityRow], partnerships: list[tuple[str, str]], index: MatchIndex, k: int = 10) -> dict:
    """Each city's top k allowed partners, best first, as (score, partner id); `index` lends only its weights,
    realism parameters and rules. Covers what the benchmark's cities have: no declines, exclusions or drafts."""
    w, prior, rules = index.weights.factors(), index.realism, index.rules
    beta = [c / s for c, s in zip(prior.coef, prior.std, strict=True)]
    offset = prior.intercept - sum(b * m for b, m in zip(beta, prior.mean, strict=True))
    partners = nx.Graph(partnerships)
    partners.add_nodes_from(r.id for r in rows)
    degree = dict(partners.degree())
    by_id = {r.id: r for r in rows}
    country = {r.id: r.country_code for r in rows}
    pair_count = Counter(tuple(sorted((country[a], country[b]))) for a, b in partners.edges())
    country_degree, top_logpop = Counter(), defaultdict(float)
    for r in rows:
        country_degree[r.country_code] += degree[r.id]
        top_logpop[r.country_code] = max(top_logpop[r.country_code], math.log1p(r.population))
    total_degree = sum(country_degree.values())
    partners_in = {r.id: Counter(country[x] for x in partners[r.id]) for r in rows}
    two_hop_in = {r.id: sum((partners_in[x] for x in partners[r.id]), Counter()) for r in rows}
    two_hop_degree = {r.id: sum(degree[x] for x in partners[r.id]) for r in rows}
    need_total = {r.id: sum(v["need"] for v in r.themes.values()) for r in rows}

    def xyz(r):
        lat, lon = math.radians(r.latitude), math.radians(r.longitude)
        return math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)

    where = {r.id: xyz(r) for r in rows}

    def nearest(r):  # its NEAR_CITIES nearest other cities
        closeness = sorted((-sum(p * q for p, q in zip(where[r.id], where[o.id], strict=True)), o.id) for o in rows)
        return set([o for _, o in closeness if o != r.id][:NEAR_CITIES])

    near = {r.id: nearest(r) for r in rows}

    def met(giver, taker, side):  # Σ over themes of min(taker's need, giver's `side` level)
        return sum(min(v["need"], giver.themes.get(t, {}).get(side, 0)) for t, v in taker.themes.items())

    def realism(a, b, km):
        ca, cb, la, lb = country[a.id], country[b.id], math.log1p(a.population), math.log1p(b.population)
        pairs = pair_count[tuple(sorted((ca, cb)))]
        da, db = math.log1p(degree[a.id]), math.log1p(degree[b.id])
        a_in_b, b_in_a = partners_in[a.id][cb], partners_in[b.id][ca]
        common = list(nx.common_neighbors(partners, a.id, b.id))
        adamic_adar = sum(1 / math.log(degree[z]) for z in common if degree[z] > 1)
        walks = sum(len(set(partners[x]) & set(partners[b.id])) for x in partners[a.id])
        near_partners = sum(partners.has_edge(x, b.id) for x in near[a.id]) + sum(
            partners.has_edge(y, a.id) for y in near[b.id]
        )
        near_ties = sum(y in near[b.id] for x in near[a.id] for y in partners[x])
        log_d = math.log1p(km) / 10
        features = (
            log_d,
            log_d * log_d,
            float(ca == cb),
            (la + lb) / 2,
            abs(la - lb),
            math.log1p(pairs),
            adamic_adar,
            math.log1p(len(common)),
            da + db,
            da * db,
            math.log1p(a_in_b) + math.log1p(b_in_a),
            math.log1p(pairs * total_degree / max(country_degree[ca] * country_degree[cb], 1)),
            math.log1p(country_degree[ca]) + math.log1p(country_degree[cb]),
            float(pairs > 0),
            float(a_in_b > 0) + float(b_in_a > 0),
            float(da == 0) + float(db == 0),
            two_hop_in[a.id][cb] / max(two_hop_degree[a.id], 1) + two_hop_in[b.id][ca] / max(two_hop_degree[b.id], 1),
            math.log1p(walks / math.sqrt(max(degree[a.id] * degree[b.id], 1))),
            abs((la - top_logpop[ca]) - (lb - top_logpop[cb])),
            math.log1p(near_partners),
            math.log1p(near_ties),
        )
        logit = min(max(offset + sum(x * f for x, f in zip(beta, features, strict=True)), -30), 30)
        return 1 / (1 + math.exp(-logit)), adamic_adar

    def score(a, b):
        gain_a = met(b, a, "offer") / max(need_total[a.id], 1)
        gain_b = met(a, b, "offer") / max(need_total[b.id], 1)
        two_sided = 2 * gain_a * gain_b / max(gain_a + gain_b, 1e-30)
        if two_sided <= 0 or (country[a.id] == country[b.id] and not rules.allow_same_country):
            return None
        if partners.has_edge(a.id, b.id) or degree[a.id] >= a.capacity or degree[b.id] >= b.capacity:
            return None
        cosine = sum(x * y for x, y in zip(xyz(a), xyz(b), strict=True))
        km = EARTH_RADIUS_KM * math.acos(min(max(cosine, -1.0), 1.0))
        gap = abs(utc_offset_hours(a.timezone, a.longitude) - utc_offset_hours(b.timezone, b.longitude))
        gap = min(gap, 24 - gap)
        pairs = pair_count[tuple(sorted((country[a.id], country[b.id])))]
        prior, adamic_adar = realism(a, b, km)
        values = {
            "complementarity": two_sided,
            "shared_priorities": met(a, b, "need") / max(math.sqrt(need_total[a.id] * need_total[b.id]), 1),
            "distance": math.exp(-km / DISTANCE_SCALE_KM),
            "corridor": float(bool(set(a.corridors) & set(b.corridors))),
            "language": float(bool(set(a.languages) & set(b.languages))),
            "timezone": min(max((WORKDAY_HOURS - gap) / WORKDAY_HOURS, 0.0), 1.0),
            "country_affinity": min(1.0, math.log1p(pairs) / math.log1p(AFFINITY_SATURATION)),
            "network": adamic_adar / (1 + adamic_adar),
            "realism": prior,
            "hub_damping": sum(min(1.0, math.log1p(degree[c.id]) / math.log1p(HUB_SATURATION)) for c in (a, b)) / 2,
        }
        return sum(w[name] * value for name, value in values.items())

    graph = nx.complete_graph([r.id for r in rows])
    for a, b in graph.edges():
        graph[a][b]["score"] = score(by_id[a], by_id[b])
    return {
        c: sorted(((s["score"], b) for b, s in graph[c].items() if s["score"] is not None), key=lambda x: -x[0])[:k]
        for c in graph
    }
