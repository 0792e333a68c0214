"""Matching core speed and memory with synthetic cities, and the naive networkx baseline, in one run.

    .venv/bin/python tests/bench/matching.py [--cities 25000] [--seed 0] [--tops FILE]

Prints JSON: top-10 for one city (p50/p99 over 200 cities), one profile update until it shows in
suggestions (and one that moves the city), all cities' top-20 recomputed, a programme round (capacity 1),
clusters, resident memory, rounds of 1,000 and 5,000 cities against the optimum (see `round_quality`), and,
at 1,000 cities, the core's all top-10 against the naive baselines of `naive.py` (a networkx complete graph,
each pair scored in Python).

`--tops FILE` writes what the core answers instead of how fast (a refactor of the core must leave the file
identical): 200 cities' top 10 with their contributions and explanations, every city's top 10 from the
kernel, a programme round's pairs and the clusters, then the same after a profile update, a move and new
partnerships (which exercise the index's cache invalidation). Use a modest `--cities` (5000).
"""

import argparse
import json
import random
import resource
import time
from dataclasses import replace
from datetime import UTC, datetime

import naive
import numpy as np
from scipy.optimize import linear_sum_assignment

from citypair_matching.clusters import find_clusters
from citypair_matching.core import CityRow, MatchIndex
from citypair_matching.rounds import candidate_edges, exact_pairing, pair_round
from citypair_shared.themes import THEME_IDS

COUNTRIES = ["CN", "KZ", "UZ", "KG", "PK", "RU", "TR", "IR", "MN", "TH", "VN", "MY", "ID", "EG", "GR", "PL"]


def synthetic(n: int, rng: random.Random) -> list[CityRow]:
    rows = []
    for i in range(n):
        themes = {t: {"offer": rng.randint(0, 5), "need": rng.randint(0, 5)} for t in rng.sample(THEME_IDS, 8)}
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
                population=rng.randint(50_000, 20_000_000),
                languages=(rng.choice(["zh", "ru", "en", "ar", "tr"]),),
                corridors=(rng.choice(["a", "b", "c", "d"]),),
                capacity=8,
            )
        )
    return rows


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def build(rows: list[CityRow], rng: random.Random, partnerships: int) -> MatchIndex:
    index = MatchIndex(capacity=len(rows) + 1)
    for row in rows:
        index.upsert(row)
    for _ in range(partnerships):
        a, b = rng.randrange(len(rows)), rng.randrange(len(rows))
        index.add_partnership(rows[a].id, rows[b].id)
    return index


def top10_ms(index: MatchIndex, rows: list[CityRow], rng: random.Random, now: datetime) -> dict:
    """One city's top 10 with explanations (`suggest`): p50 and p99 over 200 random cities."""
    times = []
    for row in rng.sample(rows, 200):
        t = time.perf_counter()
        index.suggest(row.id, 10, now=now)
        times.append(time.perf_counter() - t)
    return {"p50": ms(np.percentile(times, 50)), "p99": ms(np.percentile(times, 99))}


def bound_over_every_pair(index: MatchIndex, positions: np.ndarray, now: datetime) -> tuple[int, float]:
    """The linear programme's optimum over every allowed pair (capacity 1), which bounds any pairing from above: half
    the best assignment of the pairs' bipartite double cover (scipy's exact solver; leaving a city out scores 0)."""
    scores = index.allowed_scores(positions, positions, now=now)
    allowed = np.isfinite(scores)
    weights = np.where(allowed, np.maximum(scores, 0.0), 0.0)
    rows, cols = linear_sum_assignment(weights, maximize=True)
    return int(np.triu(allowed, 1).sum()), float(weights[rows, cols].sum() / 2)


def round_quality(now: datetime, seed: int) -> dict:
    """Rounds against the optimum, at 1,000 and 5,000 cities: against the linear programme over every allowed pair,
    whose optimum bounds any pairing from above, and against the round's own bound on its candidates; at 1,000
    also against networkx's exact max_weight_matching on the round's candidate pairs."""
    out = {}
    for n in (1000, 5000):
        rng = random.Random(seed + n)
        index = build(synthetic(n, rng), rng, partnerships=n)
        positions = index.positions()
        t = time.perf_counter()
        result = pair_round(index, positions, capacity=1, min_score=0.0, now=now)
        figures = {
            "round_s": round(time.perf_counter() - t, 2),
            "round_total": result.total,
            "candidate_pairs": result.candidate_edges,
            "bound_on_candidates": result.upper_bound,
            "share_of_bound_on_candidates": round(result.total / result.upper_bound, 5),
        }
        if n == 1000:
            edges = candidate_edges(index, positions, min_score=0.0, now=now)
            t = time.perf_counter()
            exact = sum(edges[e] for e in exact_pairing(edges))
            figures["networkx_exact_on_candidates"] = {"total": round(exact, 6), "s": round(time.perf_counter() - t, 1)}
            figures["share_of_networkx_exact"] = round(result.total / exact, 5)
        t = time.perf_counter()
        pairs, bound = bound_over_every_pair(index, positions, now)
        figures["bound_over_every_allowed_pair"] = {
            "pairs": pairs,
            "bound": round(bound, 6),
            "s": round(time.perf_counter() - t, 1),
        }
        figures["share_of_bound_over_every_pair"] = round(result.total / bound, 5)
        out[n] = figures
    return out


def against_naive(now: datetime, seed: int) -> dict:
    """The core's all top-10 at 1,000 cities (cold: a new index) against the naive baselines in `naive.py`, on the
    same cities and partnerships; the naive scoring of every factor must find the core's top 10."""
    rng = random.Random(seed + 1)
    small = synthetic(1000, rng)
    index = build(small, rng, partnerships=1000)
    t = time.perf_counter()
    core = index.ranked_all(index.positions(), 10, now=now)
    core_s = time.perf_counter() - t
    t = time.perf_counter()
    naive.complementarity_only(small)
    light_s = time.perf_counter() - t
    t = time.perf_counter()
    full = naive.every_factor(small, list(index.graph.edges()), index)
    full_s = time.perf_counter() - t
    pairs = [
        (abs(score - naive_score), small[partner].id == naive_partner)
        for position, top in core.items()
        for (partner, score), (naive_score, naive_partner) in zip(top, full[small[position].id], strict=True)
    ]
    return {
        "core_all_top10_s": round(core_s, 4),
        "naive_every_factor_s": round(full_s, 2),
        "speedup": round(full_s / core_s, 1),
        # float32 coordinates in the core move a short distance by up to ~2 km: scores agree to about 1e-4
        "same_top10": max(gap for gap, _ in pairs) < 1e-3,  # (zip(strict) fails on another length)
        "largest_score_gap": float(max(gap for gap, _ in pairs)),
        "same_partner_at_each_rank": sum(same for _, same in pairs) / len(pairs),
        "naive_complementarity_only_s": round(light_s, 2),
        "speedup_over_complementarity_only": round(light_s / core_s, 1),
    }


def answers(index: MatchIndex, rows: list[CityRow], rng: random.Random, now: datetime) -> dict:
    """What the core answers for the `--tops` file (floats as JSON keeps them: exactly)."""
    sampled = rng.sample(rows, 200)
    suggestions = {
        row.id: [
            [s.city_id, s.score, s.gain_to_city, s.gain_to_partner, s.contributions]
            for s in index.suggest(row.id, 10, now=now)
        ]
        for row in sampled
    }
    explained = {}
    for row in sampled[:50]:
        for other in [s[0] for s in suggestions[row.id][:2]] + [rng.choice(rows).id]:
            e = index.explain(row.id, other, now=now)
            explained[f"{row.id}|{other}"] = [e.score, e.eligible, e.values, e.contributions, e.distance_km]
    positions = index.positions()
    everyone = index.ranked_all(positions, 10, now=now)
    result = pair_round(index, positions, capacity=1, min_score=0.0, now=now)
    clusters = find_clusters(index, positions, size=5, limit=10, now=now)
    return {
        "suggest_top10": suggestions,
        "explain": explained,
        "ranked_all_top10": {str(p): top for p, top in everyone.items()},
        "round": {"pairs": result.pairs, "total": result.total, "method": result.method},
        "clusters": [repr(c) for c in clusters],
    }


def tops(path: str, rows: list[CityRow], index: MatchIndex, rng: random.Random, now: datetime) -> None:
    out = {"built": answers(index, rows, rng, now)}
    target = rows[0]
    mirror = {k: {"offer": v["need"], "need": v["offer"]} for k, v in rows[1].themes.items()}
    index.upsert(replace(target, version=2, themes=mirror, country_code="XX"))
    out["after_update"] = answers(index, rows, rng, now)
    index.upsert(replace(target, version=3, themes=mirror, latitude=rows[1].latitude, longitude=rows[1].longitude))
    out["after_move"] = answers(index, rows, rng, now)
    for _ in range(50):
        index.add_partnership(rows[rng.randrange(len(rows))].id, rows[rng.randrange(len(rows))].id)
    index.add_decline(rows[2].id, rows[3].id, now)
    out["after_partnerships"] = answers(index, rows, rng, now)
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cities", type=int, default=25_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="skip all-top-20, the round and clusters")
    parser.add_argument("--tops", metavar="FILE", help="write the core's answers (not timings) to FILE and stop")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    rows = synthetic(args.cities, rng)
    started = time.perf_counter()
    index = build(rows, rng, partnerships=args.cities)
    build_s = time.perf_counter() - started
    out = {"cities": args.cities, "partnerships": index.graph.number_of_edges(), "build_s": round(build_s, 2)}
    if args.tops:
        tops(args.tops, rows, index, rng, now)
        return

    out["top10_ms"] = top10_ms(index, rows, rng, now)

    target = rows[0]
    other = index.suggest(rows[1].id, 20, now=now)
    t = time.perf_counter()
    mirror = {k: {"offer": v["need"], "need": v["offer"]} for k, v in rows[1].themes.items()}
    index.upsert(replace(target, version=2, themes=mirror, country_code="XX"))
    seen = [s.city_id for s in index.suggest(rows[1].id, 20, now=now)]
    out["update_reflected_ms"] = ms(time.perf_counter() - t)
    out["update_changed_suggestions"] = target.id in seen and target.id not in [s.city_id for s in other]
    t = time.perf_counter()  # a move: the near-city lists follow it (the city's own, and those it enters or leaves)
    index.upsert(replace(target, version=3, themes=mirror, latitude=rows[1].latitude, longitude=rows[1].longitude))
    index.suggest(rows[1].id, 20, now=now)
    out["move_reflected_ms"] = ms(time.perf_counter() - t)
    t = time.perf_counter()  # a new city (a city registered): its near cities, those it enters, its own partners
    index.upsert(replace(rows[2], id="new-city", version=1, latitude=rows[1].latitude + 0.01))
    index.suggest("new-city", 10, now=now)
    out["new_city_reflected_ms"] = ms(time.perf_counter() - t)

    if args.quick:
        out["rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(out, indent=1))
        return
    t = time.perf_counter()
    everyone = index.ranked_all(index.positions(), 20, now=now)
    out["all_top20_s"] = round(time.perf_counter() - t, 2)
    assert len(everyone) == args.cities + 1  # and the new city

    t = time.perf_counter()
    result = pair_round(index, index.positions(), capacity=1, min_score=0.0, now=now)
    out["round_s"] = round(time.perf_counter() - t, 2)
    out["round"] = {"pairs": len(result.pairs), "total": result.total, "method": result.method}

    t = time.perf_counter()
    clusters = find_clusters(index, index.positions(), size=5, limit=10, now=now)
    out["clusters_s"] = round(time.perf_counter() - t, 2)
    out["clusters"] = len(clusters)
    out["rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    out["round_quality"] = round_quality(now, args.seed)
    out["baseline_1000"] = against_naive(now, args.seed)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
