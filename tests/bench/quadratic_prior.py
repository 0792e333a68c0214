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

import numpy as np

from citypair_cli import realism_fit as rf
from citypair_matching.realism import FEATURES, feature_arrays

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from evaluate import query_metrics  # noqa: E402

BLOCK = 8
COUNTRY_PAIR_FEATURES = (
    "same_country",
    "country_pair_partnerships",
    "country_pair_lift",
    "country_degree",
    "country_pair_seen",
)


def irls(design: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Logistic regression by Newton's method with an L2 penalty (not on the intercept, w[0])."""
    design = np.hstack([np.ones((len(design), 1)), design])
    w = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(25):
        p = 1 / (1 + np.exp(-np.clip(design @ w, -30, 30)))
        step = np.linalg.solve(
            (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9), design.T @ (p - y) + penalty * w
        )
        w -= step
        if np.abs(step).max() < 1e-7:
            break
    return w


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
    p_mean, p_std = products.mean(axis=0), products.std(axis=0)
    p_std[p_std == 0] = 1.0
    linear = irls(z, y, 1.0)[1:]
    quad = irls(np.hstack([z, (products - p_mean) / p_std]), y, 100.0)[1:]
    square = np.zeros((d, d))  # the products' part as z' W z (W upper triangular), in standardized units
    square[upper] = quad[d:] / p_std
    models = {"linear": (linear, np.zeros((d, d))), "quadratic": (quad[:d], square)}
    # Only the products of two features of the country pair: the kernel computes those once per query city and
    # partner country (`scoring._realism_row`), not per pair, so they would cost its scan nothing.
    country = [FEATURES.index(name) for name in COUNTRY_PAIR_FEATURES]
    among = np.isin(upper[0], country) & np.isin(upper[1], country)
    fitted_among = irls(np.hstack([z, ((products - p_mean) / p_std)[:, among]]), y, 10.0)[1:]
    square = np.zeros((d, d))
    square[upper[0][among], upper[1][among]] = fitted_among[d:] / p_std[among]
    models["country_pair_products"] = (fitted_among[:d], square)
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
        scores = {name: zb @ w + ((zb @ square) * zb).sum(axis=1) for name, (w, square) in models.items()}
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
