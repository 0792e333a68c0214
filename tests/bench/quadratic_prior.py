"""Would a realism prior with pairwise interactions, or more features, rank better than the shipped one? Prints JSON.

    .venv/bin/python tests/bench/quadratic_prior.py [--seed 0] [--split random|cold|low-degree] [--max-queries N]
        [--regions] [--taste] [--query]

The same split and fit sample as `evaluate.py` (`realism_fit.split_pairs`, `realism_fit.fold_samples` over the kept
pairs, the whole universe of candidates), then logistic models over the realism features: linear (the shipped form),
quadratic (every product of two standardized features besides, L2 100), country-pair products (only the products
of two of the country pair's features, L2 10), country pair times pair (the products of one of those with one of the
others, L2 10) and pair products (the products of two of the others, L2 100). With `--regions`, seven features more
(`RegionFeatures`: the GeoNames regions' partnerships and the cities' population ranks in their countries) and two
models on all 28: linear and quadratic. With `--taste`, four features more (`TasteFeatures`: what a city's partners
say of its taste) and linear models with all four and with each alone. With `--query`, weights per query city (the
features' products with `QueryFeatures`, the query's own). Each ranks every candidate for the same query cities
(numpy, not the kernel), so their differences are paired. About 6 minutes and 13 GB with `--regions`, 14 minutes
with `--regions --taste` (2 cores).
An experiment, not the product: the kernel's pruning bound and the explanations assume a linear logit over the
shipped features.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from citypair_cli import realism_fit as rf
from citypair_matching.graph import NEAR_CITIES
from citypair_matching.realism import FEATURES, feature_arrays
from citypair_matching.scoring import distance_km

sys.path.insert(0, str(Path(__file__).resolve().parent))  # evaluate.py beside this file
from evaluate import query_metrics  # noqa: E402

BLOCK = 8
COUNTRY_PAIR_FEATURES = (
    "same_country",
    "country_pair_partnerships",
    "country_pair_lift",
    "country_degree",
    "country_pair_seen",
)
REGION_FEATURES = (
    "region_pair_partnerships",
    "region_pair_lift",
    "region_degree",
    "same_region",
    "partners_in_other_region",
    "population_rank_gap",
    "population_rank_sum",
)


def country_ids(world: rf.World) -> np.ndarray:
    """Each city's country as a number (0 … countries - 1)."""
    return np.unique([r["countrycode"] for r in world.cities], return_inverse=True)[1].ravel()


def log_populations(world: rf.World) -> np.ndarray:
    return np.log1p([float(r.get("population") or 0) for r in world.cities])


def degrees(world: rf.World, edges: np.ndarray) -> np.ndarray:
    """Each city's partnerships in the graph of `edges`."""
    return np.bincount(edges.ravel(), minlength=len(world.cities)).astype(np.float64)


class RegionFeatures:
    """`REGION_FEATURES` over a graph of `edges` (i < j positions): the partnerships between the two cities'
    GeoNames regions (admin1; log count, lift over the regions' totals, the totals' logs added, same region),
    each city's partners in the other's region (logs, both ways, added), and the cities' population ranks in
    their countries (the gap and the sum of their logs)."""

    def __init__(self, world: rf.World, edges: np.ndarray):
        keys = [f"{r['countrycode']}.{r.get('admin1code') or ''}" for r in world.cities]
        self.region = np.unique(keys, return_inverse=True)[1].ravel()
        regions, n = int(self.region.max()) + 1, len(world.cities)
        ra, rb = self.region[edges[:, 0]], self.region[edges[:, 1]]
        self.pairs = np.zeros((regions, regions))
        np.add.at(self.pairs, (ra, rb), 1.0)
        np.add.at(self.pairs, (rb, ra), 1.0)
        self.total = self.pairs.sum(axis=1)
        ends = np.concatenate([edges, edges[:, ::-1]])  # each partnership both ways: (city, partner)
        ends = ends[np.argsort(ends[:, 0], kind="stable")]
        self.cities_of_ends, self.partner_region_of_ends, self.n = ends[:, 0], self.region[ends[:, 1]], n
        cities, starts = np.unique(self.cities_of_ends, return_index=True)
        regions_of_partners = np.split(self.partner_region_of_ends, starts[1:])
        self.partner_regions = dict(zip(cities.tolist(), regions_of_partners, strict=True))
        self.in_region = {}  # region -> (n,) each city's partners there, filled as queries need them
        population = np.array([float(r.get("population") or 0) for r in world.cities])
        country = country_ids(world)
        order = np.lexsort((-population, country))
        first = np.searchsorted(country[order], country[order])  # where each city's country starts in `order`
        rank = np.empty(n)
        rank[order] = np.arange(n) - first + 1
        self.log_rank = np.log(rank)

    def partners_in(self, region: int) -> np.ndarray:
        if region not in self.in_region:
            there = self.partner_region_of_ends == region
            self.in_region[region] = np.bincount(self.cities_of_ends[there], minlength=self.n).astype(np.float64)
        return self.in_region[region]

    def __call__(self, queries: np.ndarray, candidates: np.ndarray) -> dict[str, np.ndarray]:
        ra, rb = self.region[queries][:, None], self.region[candidates][None, :]
        count = self.pairs[ra, rb]
        lift = np.log1p(count * self.total.sum() / np.maximum(self.total[ra] * self.total[rb], 1.0))
        mine = np.zeros((len(queries), len(candidates)))
        theirs = np.zeros_like(mine)
        for i, q in enumerate(queries.tolist()):
            per_region = np.bincount(self.partner_regions.get(q, []), minlength=len(self.total))
            mine[i] = per_region[rb[0]]
            theirs[i] = self.partners_in(int(ra[i, 0]))[candidates]
        la, lb = self.log_rank[queries][:, None], self.log_rank[candidates][None, :]
        return {
            "region_pair_partnerships": np.log1p(count),
            "region_pair_lift": lift,
            "region_degree": np.log1p(self.total[ra]) + np.log1p(self.total[rb]),
            "same_region": (ra == rb) * 1.0,
            "partners_in_other_region": np.log1p(mine) + np.log1p(theirs),
            "population_rank_gap": np.abs(la - lb),
            "population_rank_sum": la + lb,
        }


TASTE_FEATURES = ("taste_distance", "taste_population", "partner_country_share", "partner_country_cosine")


class TasteFeatures:
    """`TASTE_FEATURES` over a graph of `edges`: what each side's partners say it prefers. taste_distance:
    (log d - the side's mean log d to its partners)^2, both sides added; taste_population: (the other's log
    population - the side's partners' mean)^2, both sides added; a side without partners takes its NEAR_CITIES
    nearest cities' partnerships' means (its neighbourhood's taste). partner_country_share: the share of each side's
    partners in the other's country, added; partner_country_cosine: the cosine of the two sides' histograms of
    partner countries."""

    def __init__(self, world: rf.World, edges: np.ndarray):
        from scipy.spatial import cKDTree

        n = len(world.cities)
        lat, lon = (np.radians([r[k] for r in world.cities]) for k in ("latitude", "longitude"))
        self.xyz = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)
        self.logpop, self.country = log_populations(world), country_ids(world)
        a, b = edges[:, 0], edges[:, 1]
        log_d = self.log_distance(self.xyz[a], self.xyz[b])
        degree = degrees(world, edges)
        sum_d = np.bincount(a, log_d, n) + np.bincount(b, log_d, n)
        sum_pop = np.bincount(a, self.logpop[b], n) + np.bincount(b, self.logpop[a], n)
        near = cKDTree(self.xyz).query(self.xyz, k=NEAR_CITIES + 1)[1][:, 1:]  # itself first
        own, hood = degree > 0, np.maximum(degree[near].sum(axis=1), 1.0)
        self.mean_d = np.where(own, sum_d, sum_d[near].sum(axis=1)) / np.where(own, degree, hood)
        self.mean_pop = np.where(own, sum_pop, sum_pop[near].sum(axis=1)) / np.where(own, degree, hood)
        countries = np.zeros((n, int(self.country.max()) + 1))
        np.add.at(countries, (a, self.country[b]), 1.0)
        np.add.at(countries, (b, self.country[a]), 1.0)
        self.share = countries / np.maximum(degree, 1.0)[:, None]
        self.unit = countries / np.maximum(np.linalg.norm(countries, axis=1), 1e-12)[:, None]

    @staticmethod
    def log_distance(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """As `log_distance` in the realism features: log(1 + km) / 10."""
        return np.log1p(distance_km((u * v).sum(axis=-1))) / 10.0

    def __call__(self, queries: np.ndarray, candidates: np.ndarray) -> dict[str, np.ndarray]:
        q, c = queries[:, None], candidates[None, :]
        log_d = self.log_distance(self.xyz[q], self.xyz[c])
        return {
            "taste_distance": (log_d - self.mean_d[q]) ** 2 + (log_d - self.mean_d[c]) ** 2,
            "taste_population": (self.logpop[c] - self.mean_pop[q]) ** 2 + (self.logpop[q] - self.mean_pop[c]) ** 2,
            "partner_country_share": self.share[q, self.country[c]] + self.share[c, self.country[q]],
            "partner_country_cosine": self.unit[queries] @ self.unit[candidates].T,
        }


QUERY_FEATURES = ("query_log_degree", "query_no_partners", "query_log_population", "query_country_degree")


class QueryFeatures:
    """`QUERY_FEATURES`: the query city's own (its partnerships' log count, none, its log population, its
    country's partnerships' log count), the same for every candidate. Alone they rank nothing; their products with
    the pair's features give each query weights of its own that stay linear in the pair's features, the form the
    kernel's bound and the explanations keep."""

    def __init__(self, world: rf.World, edges: np.ndarray):
        degree, country = degrees(world, edges), country_ids(world)
        self.values = {
            "query_log_degree": np.log1p(degree),
            "query_no_partners": (degree == 0) * 1.0,
            "query_log_population": log_populations(world),
            "query_country_degree": np.log1p(np.bincount(country, degree)[country]),
        }

    def __call__(self, queries: np.ndarray, candidates: np.ndarray) -> dict[str, np.ndarray]:
        return {name: values[queries][:, None] for name, values in self.values.items()}


class ExtraFeatures:
    """The chosen sets' features over a graph of `edges`, in the order of their names."""

    def __init__(self, world: rf.World, edges: np.ndarray, sets: list[tuple[tuple[str, ...], type]]):
        self.parts = [(names, make(world, edges)) for names, make in sets]

    def __call__(self, queries: np.ndarray, candidates: np.ndarray) -> list[np.ndarray]:
        out = []
        for names, part in self.parts:
            values = part(queries, candidates)
            out += [values[name] for name in names]  # a name a part does not give fails here
        return out


NO_PAIRS = (np.array([], dtype=int), np.array([], dtype=int))


def fit(z: np.ndarray, y: np.ndarray, columns: np.ndarray, pairs=NO_PAIRS, l2: float = 1.0) -> tuple:
    """`fit_logistic` over [z[:, columns], the products of the columns' (i, j) in `pairs`], as (columns, w, W):
    its logit, up to a constant that ranks nothing, is w·zc + zc'W zc with zc = z[:, columns]."""
    zc, d = z[:, columns], len(columns)
    params = rf.fit_logistic(np.hstack([zc, zc[:, pairs[0]] * zc[:, pairs[1]]]), y, l2=l2)
    weights = np.array(params["coef"]) / np.array(params["std"])
    square = np.zeros((d, d))
    square[pairs] = weights[d:]
    return columns, weights[:d], square


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=rf.SPLITS, default="random")
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--regions", action="store_true", help="also models with REGION_FEATURES")
    parser.add_argument("--taste", action="store_true", help="also models with TASTE_FEATURES")
    parser.add_argument("--query", action="store_true", help="also weights per query city (QUERY_FEATURES)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    world = rf.load_world()
    n = len(world.cities)
    split = rf.split_pairs(world.edges, args.split, rf.DEFAULT_HOLDOUT[args.split], args.seed)
    rng = np.random.default_rng(args.seed)
    edges = np.array(sorted(split.kept), dtype=np.int64).reshape(-1, 2)
    order = rng.permutation(len(edges))
    sets = [(REGION_FEATURES, RegionFeatures)] * args.regions + [(TASTE_FEATURES, TasteFeatures)] * args.taste
    sets += [(QUERY_FEATURES, QueryFeatures)] * args.query
    extra = (lambda kept: ExtraFeatures(world, kept, sets)) if sets else None
    samples = [
        rf.fold_samples(world, edges[np.setdiff1d(order, part)], edges[np.sort(part)], rng, rf.NEGATIVES, 0, extra)[:2]
        for part in np.array_split(order, rf.FOLDS)
    ]
    x, y = np.vstack([s[0] for s in samples]), np.concatenate([s[1] for s in samples])
    del samples
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    z = (x - mean) / std
    del x
    shipped = np.arange(len(FEATURES))
    column = dict(zip([*FEATURES, *(name for names, _ in sets for name in names)], range(z.shape[1]), strict=True))
    upper = np.triu_indices(len(shipped))
    # The products by where the kernel would compute them. Those of two features of the country pair: once per query
    # city and partner country (`scoring._realism_row`), not per pair, so they would cost its scan nothing. Those of
    # one country-pair feature with another feature: weights of the pair's features per query and partner country
    # (still linear in them). The rest: products of two of the pair's own features.
    country = [FEATURES.index(name) for name in COUNTRY_PAIR_FEATURES]
    first, second = np.isin(upper[0], country), np.isin(upper[1], country)
    models = {
        "linear": fit(z, y, shipped),
        "quadratic": fit(z, y, shipped, upper, l2=100.0),
        "country_pair_products": fit(z, y, shipped, (upper[0][first & second], upper[1][first & second]), l2=10.0),
        "country_pair_times_pair": fit(z, y, shipped, (upper[0][first ^ second], upper[1][first ^ second]), l2=10.0),
        "pair_products": fit(z, y, shipped, (upper[0][~first & ~second], upper[1][~first & ~second]), l2=100.0),
    }
    if args.regions:
        with_regions = np.array([column[name] for name in (*FEATURES, *REGION_FEATURES)])
        models["linear_regions"] = fit(z, y, with_regions)
        models["quadratic_regions"] = fit(z, y, with_regions, np.triu_indices(len(with_regions)), l2=100.0)
    if args.taste:
        models["linear_taste"] = fit(z, y, np.array([column[name] for name in (*FEATURES, *TASTE_FEATURES)]))
        for name in TASTE_FEATURES:
            models[f"linear_plus_{name}"] = fit(z, y, np.append(shipped, column[name]))
    if args.query:
        own = np.arange(len(shipped), len(shipped) + len(QUERY_FEATURES))  # their places among the columns below
        by_query = np.repeat(own, len(shipped)), np.tile(shipped, len(own))
        columns = np.append(shipped, [column[name] for name in QUERY_FEATURES])
        models["per_query"] = fit(z, y, columns, by_query, l2=10.0)
    del z
    fitted = time.perf_counter()

    index = rf.build_index(world, split.kept)
    more = ExtraFeatures(world, edges, sets) if sets else None
    indptr, neighbours, _ = index.links.csr()
    queries = np.array(split.queries, dtype=np.int64)
    if args.max_queries is not None and len(queries) > args.max_queries:
        queries = np.sort(rng.choice(queries, size=args.max_queries, replace=False))
    everyone = np.arange(n, dtype=np.int64)
    per_query = {name: np.zeros((len(queries), 5)) for name in models}
    for start in range(0, len(queries), BLOCK):
        block = queries[start : start + BLOCK]
        features = feature_arrays(index.factor_values(block, everyone)["_realism_inputs"])
        features += more(block, everyone) if more else []
        features = np.stack([np.broadcast_to(f, (len(block), n)) for f in features], axis=-1)
        zb = ((features - mean) / std).reshape(-1, len(mean))
        keep = np.ones((len(block), n), dtype=bool)  # each query's candidates: not itself, not a kept partner
        for i, q in enumerate(block.tolist()):
            keep[i, q] = False
            keep[i, neighbours[indptr[q] : indptr[q + 1]]] = False
        for name, (columns, w, square) in models.items():
            zc = zb[:, columns]
            scores = (zc @ w + ((zc @ square) * zc).sum(axis=1)).reshape(len(block), n)
            for i, q in enumerate(block.tolist()):
                per_query[name][start + i] = query_metrics(scores[i], keep[i], np.array(split.hidden_of[q]))
    report = {"seed": args.seed, "split": args.split, "query_cities": len(queries), "fit_rows": len(y)}
    for name, rows in per_query.items():
        total = rows.sum(axis=0)
        report[name] = {
            "recall@10": round(total[0] / total[4], 4),
            "recall@50": round(total[1] / total[4], 4),
            "auc": round(total[3] / total[4], 4),
        }
    report["seconds"] = {"fit": round(fitted - started, 1), "rank": round(time.perf_counter() - fitted, 1)}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
