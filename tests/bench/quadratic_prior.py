"""Would a realism prior with pairwise interactions rank better than the shipped linear one? Prints JSON.

    .venv/bin/python tests/bench/quadratic_prior.py [--seed 0] [--split random|cold|low-degree] [--max-queries N]

The same split and fit sample as `evaluate.py` (`realism_fit.split_pairs`, `realism_fit.fold_samples` over
the kept pairs, the whole universe of candidates), then three logistic models over the realism features:
linear (the shipped form), quadratic (every product of two standardized features besides, L2 100) and
country-pair products (only the products of two of the country pair's features, L2 10). Each ranks every
candidate for the same query cities (numpy, not the kernel), so their differences are paired.
An experiment, not the product: the kernel's pruning bound and the explanations assume a linear logit.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from citypair_cli import realism_fit as rf
from citypair_matching.realism import FEATURES, feature_arrays

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


def as_quadratic(params: dict, d: int, pairs: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A `fit_logistic` over [z, z[:, i] * z[:, j] for (i, j) in `pairs`] as (w, W): its logit, up to a constant
    that ranks nothing, is w·z + z'Wz."""
    weights = np.array(params["coef"]) / np.array(params["std"])
    square = np.zeros((d, d))
    square[pairs] = weights[d:]
    return weights[:d], square


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=rf.SPLITS, default="random")
    parser.add_argument("--max-queries", type=int, default=None)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    world = rf.load_world()
    n = len(world.cities)
    split = rf.split_pairs(world.edges, args.split, rf.DEFAULT_HOLDOUT[args.split], args.seed)
    rng = np.random.default_rng(args.seed)
    edges = np.array(sorted(split.kept), dtype=np.int64).reshape(-1, 2)
    order = rng.permutation(len(edges))
    samples = [
        rf.fold_samples(world, edges[np.setdiff1d(order, part)], edges[np.sort(part)], rng, rf.NEGATIVES, 0)[:2]
        for part in np.array_split(order, rf.FOLDS)
    ]
    x, y = np.vstack([s[0] for s in samples]), np.concatenate([s[1] for s in samples])
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    z = (x - mean) / std
    d = z.shape[1]
    upper = np.triu_indices(d)
    products = z[:, upper[0]] * z[:, upper[1]]
    # Only the products of two features of the country pair: the kernel computes those once per query city and
    # partner country (`scoring._realism_row`), not per pair, so they would cost its scan nothing.
    country = [FEATURES.index(name) for name in COUNTRY_PAIR_FEATURES]
    among = np.isin(upper[0], country) & np.isin(upper[1], country)
    no_pairs = (np.array([], dtype=int), np.array([], dtype=int))
    models = {
        "linear": as_quadratic(rf.fit_logistic(z, y, l2=1.0), d, no_pairs),
        "quadratic": as_quadratic(rf.fit_logistic(np.hstack([z, products]), y, l2=100.0), d, upper),
        "country_pair_products": as_quadratic(
            rf.fit_logistic(np.hstack([z, products[:, among]]), y, l2=10.0), d, (upper[0][among], upper[1][among])
        ),
    }
    fitted = time.perf_counter()

    index = rf.build_index(world, split.kept)
    indptr, neighbours, _ = index.links.csr()
    queries = np.array(split.queries, dtype=np.int64)
    if args.max_queries is not None and len(queries) > args.max_queries:
        queries = np.sort(rng.choice(queries, size=args.max_queries, replace=False))
    everyone = np.arange(n, dtype=np.int64)
    per_query = {name: np.zeros((len(queries), 5)) for name in models}
    for start in range(0, len(queries), BLOCK):
        block = queries[start : start + BLOCK]
        inputs = index.factor_values(block, everyone)["_realism_inputs"]
        features = np.stack([np.broadcast_to(f, (len(block), n)) for f in feature_arrays(inputs)], axis=-1)
        zb = ((features - mean) / std).reshape(-1, d)
        scores = {name: zb @ w + ((zb @ pairs) * zb).sum(axis=1) for name, (w, pairs) in models.items()}
        for i, q in enumerate(block.tolist()):
            keep = np.ones(n, dtype=bool)
            keep[q] = False
            keep[neighbours[indptr[q] : indptr[q + 1]]] = False
            targets = np.array(split.hidden_of[q])
            for name, s in scores.items():
                per_query[name][start + i] = query_metrics(s.reshape(len(block), n)[i], keep, targets)
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
