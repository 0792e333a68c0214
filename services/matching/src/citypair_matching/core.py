"""The matching core: pure, no I/O. Cities as numpy rows, partnerships as a networkx graph.

A pair's score is a sum of named factor contributions, `weight × value` with each value in
[0, 1] (see `Weights`); the explanation shows each one, so the parts add up to the score.

- complementarity: what A offers against what B needs and the reverse, each the share of one
  side's needs the other meets (sum over themes of min(offer, need) / sum of need); combined by
  the harmonic mean, so a pair where one side gains nothing scores 0 here (RECON 2010);
- shared_priorities: both need the same themes (sum of min(need_a, need_b), normalised);
- distance (great-circle, decaying), corridor (a shared Belt and Road corridor), language (a
  shared language), timezone (overlap of 8-hour working days), country_affinity (how often
  cities of these two countries already partner);
- network: Adamic-Adar over the partnership graph (common partners, each weighted 1/log degree);
- realism: the realism prior (`realism.py`), fitted on real twin-city pairs;
- hub_damping (negative weight): the mean hub-ness of the two cities, so a few large cities do
  not take every suggestion.

Every factor is symmetric in A and B, so score(A, B) == score(B, A). The theme levels are
integers 0–5, so sum_t min(x_t, y_t) is a dot product of level-expanded 0/1 vectors: one matrix
product scores a block of cities against all others.
"""

import json
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import networkx as nx
import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from citypair_matching import scoring
from citypair_matching.realism import RealismModel, feature_arrays
from citypair_shared.themes import THEME_IDS

LEVELS = 5
DECLINE_EXCLUSION = timedelta(days=365)
MAX_COUNTRIES = 256
NEAR_CITIES = 20  # each city's nearest cities: partnerships between two neighbourhoods are a realism feature
NEAR_IN_PLACE = 8  # more new or moved cities than this: a new k-d tree (~65 ms at 25,000) beats updates in place
LANGUAGE_BITS = 128
WEIGHTS_FILE = Path(__file__).parent / "data" / "weights.json"
# A reference instant for UTC offsets, so that scores do not move with daylight saving time.
_OFFSET_AT = datetime(2025, 1, 15, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Weights:
    """Factor weights, versioned: a score names the version it was computed with."""

    version: str
    complementarity: float
    shared_priorities: float
    distance: float
    corridor: float
    language: float
    timezone: float
    country_affinity: float
    network: float
    realism: float
    hub_damping: float

    @classmethod
    def load(cls, path: Path = WEIGHTS_FILE) -> "Weights":
        return cls(**json.loads(path.read_text()))

    def factors(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "version"}


WEIGHTS = Weights.load()
WEIGHTS_VERSION = WEIGHTS.version
FACTORS = tuple(WEIGHTS.factors())


@dataclass(frozen=True)
class Rules:
    """Constraints that are configuration: same-country pairs and eligibility rules."""

    allow_same_country: bool = False
    min_population: int = 0
    required_theme: str | None = None

    def describe(self) -> dict:
        return {
            "allow_same_country": self.allow_same_country,
            "min_population": self.min_population,
            "required_theme": self.required_theme,
        }


@dataclass(frozen=True)
class CityRow:
    id: str
    version: int
    name: str
    country_code: str
    status: str
    themes: dict  # theme -> {"offer": int, "need": int}
    latitude: float = 0.0
    longitude: float = 0.0
    population: int = 0
    timezone: str | None = None
    languages: tuple[str, ...] = ()
    corridors: tuple[str, ...] = ()
    capacity: int = 5
    excluded_countries: tuple[str, ...] = ()


@dataclass(frozen=True)
class ThemeFlow:
    """One theme where `giver` offers what `taker` needs."""

    theme: str
    giver: str
    offer: int
    taker: str
    need: int

    @property
    def text(self) -> str:
        return f"{self.giver} offers {self.theme} at {self.offer}, {self.taker} needs it at {self.need}"


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Suggestion:
    city_id: str
    name: str
    country_code: str
    score: float
    gain_to_city: float
    gain_to_partner: float
    contributions: dict[str, float] = field(default_factory=dict)
    themes_to_city: list[ThemeFlow] = field(default_factory=list)
    themes_to_partner: list[ThemeFlow] = field(default_factory=list)
    constraints_passed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Explanation:
    city_a: str
    city_b: str
    score: float
    eligible: bool
    values: dict[str, float]
    contributions: dict[str, float]
    gain_to_a: float
    gain_to_b: float
    themes_to_a: list[ThemeFlow]
    themes_to_b: list[ThemeFlow]
    shared_needs: list[str]
    checks: list[Check]
    distance_km: float


CHECKS = (
    "not_itself",
    "published",
    "not_partners",
    "not_declined",
    "city_capacity",
    "partner_capacity",
    "countries_not_excluded",
    "same_country_allowed",
    "eligible",
    "both_gain",
)


def theme_vectors(themes: dict) -> tuple[np.ndarray, np.ndarray]:
    offer = np.array([themes.get(t, {}).get("offer", 0) for t in THEME_IDS], dtype=np.float32)
    need = np.array([themes.get(t, {}).get("need", 0) for t in THEME_IDS], dtype=np.float32)
    return offer, need


def level_expanded(levels: np.ndarray) -> np.ndarray:
    """0/1 indicators [level >= l] for l = 1..5, so that sum_t min(x_t, y_t) = expanded(x) · expanded(y)."""
    return np.concatenate([(levels >= lvl).astype(np.float32) for lvl in range(1, LEVELS + 1)], axis=-1)


@cache
def utc_offset_hours(timezone: str | None, longitude: float) -> float:
    """The IANA zone's UTC offset (at a fixed winter instant); from the longitude if the zone is unknown."""
    if timezone:
        try:
            return ZoneInfo(timezone).utcoffset(_OFFSET_AT).total_seconds() / 3600
        except (KeyError, ValueError, OSError):
            pass
    return round(longitude / 15.0)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenation of arange(start, start + length) for each pair."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return offsets + np.arange(total)


def _unit_vectors(rows: list[CityRow]) -> np.ndarray:
    lat, lon = np.radians([r.latitude for r in rows]), np.radians([r.longitude for r in rows])
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)]).reshape(-1, 3)


def _nearest_cities(rows: list[CityRow]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors, each city's NEAR_CITIES nearest other cities (in order of position), and the cosine to the
    farthest of them, by a k-d tree (chord distance orders like the great circle)."""
    xyz, n = _unit_vectors(rows), len(rows)
    k = max(min(NEAR_CITIES, n - 1), 0)
    near, farthest = np.zeros((n, k), dtype=np.int64), np.full(n, 2.0)
    if k > 0:
        distance, found = cKDTree(xyz).query(xyz, k=k + 1)
        others = found != np.arange(n)[:, None]
        others[others.sum(axis=1) > k, -1] = False  # itself not among the k + 1 (equal points)
        near = np.sort(found[others].reshape(n, k), axis=1)
        farthest = 1.0 - distance[:, -1] ** 2 / 2.0
    return xyz, near, farthest


def _nearest_to(xyz: np.ndarray, c: int) -> tuple[np.ndarray, float]:
    """City c's nearest other cities (in order of position) and the cosine to the farthest of them."""
    closeness = xyz @ xyz[c]
    closeness[c] = -np.inf
    k = min(NEAR_CITIES, len(xyz) - 1)
    top = np.argpartition(-closeness, k - 1)[:k]
    return np.sort(top), float(closeness[top].min())


def _follow_moves(lists: tuple | None, rows: list[CityRow], moved: list[int]) -> tuple | None:
    """The lists after the cities at `moved` (positions, ascending: new ones are appended) are new or moved: each
    redoes its own list and those of the cities that listed it or now have it nearer than their farthest (a
    product over every city each). None (rebuild) for many cities at once, or when the lists' length changes."""
    if lists is None or len(moved) > NEAR_IN_PLACE or lists[1].shape[1] != NEAR_CITIES or len(rows) <= NEAR_CITIES:
        return None
    xyz, near, farthest = lists
    for pos in moved:
        if pos == len(xyz):
            xyz, near, farthest = np.vstack([xyz, np.zeros(3)]), np.vstack([near, near[:1]]), np.append(farthest, 2.0)
        xyz[pos] = _unit_vectors([rows[pos]])[0]
        closeness = xyz @ xyz[pos]
        closeness[pos] = -np.inf
        affected = {pos, *np.flatnonzero((near == pos).any(axis=1)), *np.flatnonzero(closeness > farthest)}
        for c in affected:
            near[c], farthest[c] = _nearest_to(xyz, c)
    return xyz, near, farthest


class _Vocabulary:
    """Small string → index vocabularies (countries, languages, corridors)."""

    def __init__(self, limit: int):
        self.limit, self.index = limit, {}

    def __call__(self, value: str) -> int:
        found = self.index.get(value)
        if found is None:
            found = self.index[value] = len(self.index) % self.limit
        return found


_COLUMNS = {
    # name: (shape of one row, dtype)
    "offer": ((LEVELS * len(THEME_IDS),), np.float32),
    "need": ((LEVELS * len(THEME_IDS),), np.float32),
    "offer_level": ((len(THEME_IDS),), np.float32),
    "need_level": ((len(THEME_IDS),), np.float32),
    "need_total": ((), np.float32),
    "xyz": ((3,), np.float32),
    "utc": ((), np.float32),
    "logpop": ((), np.float32),
    "population": ((), np.int64),
    "country": ((), np.int32),
    "corridors": ((), np.int64),
    "languages": ((LANGUAGE_BITS // 64,), np.uint64),
    "capacity": ((), np.int32),
    "degree": ((), np.int32),
    "active": ((), bool),
    "eligible": ((), bool),
    "partners_in": ((MAX_COUNTRIES,), np.int16),
}


class MatchIndex:
    """Every city's rows (grown in place), the partnership graph and recent declines."""

    def __init__(
        self,
        capacity: int = 1024,
        *,
        rules: Rules | None = None,
        weights: Weights = WEIGHTS,
        realism: RealismModel | None = None,
    ):
        self.rules = rules or Rules()
        self.weights = weights
        self.realism = realism if realism is not None else RealismModel.load()
        self._cols = {name: np.zeros((capacity, *shape), dtype=dtype) for name, (shape, dtype) in _COLUMNS.items()}
        self._rows: list[CityRow] = []
        self._position: dict[str, int] = {}
        self.graph = nx.Graph()
        self.pair_counts = np.zeros((MAX_COUNTRIES, MAX_COUNTRIES), dtype=np.int32)
        self.declined: dict[str, dict[str, datetime]] = {}
        self._countries = _Vocabulary(MAX_COUNTRIES)
        self._languages = _Vocabulary(LANGUAGE_BITS)
        self._corridors = _Vocabulary(63)
        self._excluders: set[int] = set()
        self._generation = 0  # bumped by every change that can move a score or a constraint
        self._csr_cache: tuple | None = None
        self._hops_cache: tuple | None = None
        self._transposed: dict | None = None
        self._topk_cache: dict = {}
        self._kernel_cache: tuple | None = None
        self._country_cache: tuple | None = None
        self._near_lists: tuple | None = None  # (unit vectors, each city's nearest, cosine to its farthest of them)
        self._near_moved: set[int] = set()  # new or moved cities the lists do not follow yet
        self._near_cache: tuple | None = None  # the lists as sparse matrices, both ways
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ keeping the index

    def __len__(self) -> int:
        return len(self._position)

    def __contains__(self, city_id: str) -> bool:
        return city_id in self._position

    def city(self, city_id: str) -> CityRow:
        return self._rows[self._position[city_id]]

    def position(self, city_id: str) -> int:
        return self._position[city_id]

    def row_at(self, pos: int) -> CityRow:
        return self._rows[pos]

    def positions(self) -> np.ndarray:
        return np.arange(len(self._rows))

    def upsert(self, row: CityRow) -> None:
        """Add or replace a city; ignored if the index already holds a newer version."""
        pos = self._position.get(row.id)
        old_country = None
        if pos is None:
            pos = len(self._rows)
            self._grow(pos + 1)
            self._rows.append(row)
            self._position[row.id] = pos
        elif self._rows[pos].version >= row.version:
            return
        else:
            old_country = self._rows[pos].country_code
            if old_country != row.country_code:  # take this city's partnerships out of the old country's counts
                for other in self.graph.adj.get(row.id, ()):
                    if other in self._position:
                        self._count_edge(pos, self._position[other], -1)
        new = pos == len(self._rows) - 1 and self._rows[pos] is row
        before = self._rows[pos]
        if new or (before.latitude, before.longitude) != (row.latitude, row.longitude):
            self._near_moved.add(pos)  # neighbourhoods change with a new or moved city (applied when next needed)
            self._near_cache = None
        self._changed(structure=new and row.id in self.graph and self.graph.degree(row.id) > 0)
        if new and self._csr_cache is not None:  # no partnerships yet: the graph arrays gain an empty row
            indptr, neighbours, inverse_log = self._csr_cache
            self._csr_cache = (np.append(indptr, indptr[-1]), neighbours, np.append(inverse_log, np.float32(0)))
        self._rows[pos] = row
        c = self._cols
        offer, need = theme_vectors(row.themes)
        c["offer"][pos], c["need"][pos] = level_expanded(offer), level_expanded(need)
        c["offer_level"][pos], c["need_level"][pos] = offer, need
        if self._transposed is not None:
            for name in ("offer", "need", "offer_level", "need_level"):
                self._transposed[name][:, pos] = c[name][pos]
        c["need_total"][pos] = need.sum()
        lat, lon = math.radians(row.latitude), math.radians(row.longitude)
        c["xyz"][pos] = (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))
        c["utc"][pos] = utc_offset_hours(row.timezone, row.longitude)
        c["population"][pos] = row.population
        c["logpop"][pos] = math.log1p(max(row.population, 0))
        c["country"][pos] = self._countries(row.country_code)
        c["corridors"][pos] = sum(1 << self._corridors(x) for x in set(row.corridors))
        bits = np.zeros(LANGUAGE_BITS // 64, dtype=np.uint64)
        for language in set(row.languages):
            i = self._languages(language)
            bits[i // 64] |= np.uint64(1) << np.uint64(i % 64)
        c["languages"][pos] = bits
        c["capacity"][pos] = row.capacity
        c["active"][pos] = row.status == "published"
        c["eligible"][pos] = not self.eligibility_failures(row)
        if row.excluded_countries:
            self._excluders.add(pos)
        else:
            self._excluders.discard(pos)
        if row.id in self.graph and old_country is None:  # partnerships recorded before the city arrived
            for other in self.graph.adj[row.id]:
                if other in self._position:
                    self._count_edge(pos, self._position[other], 1)
        elif old_country is not None and old_country != row.country_code:  # ...and into the new one's
            for other in self.graph.adj.get(row.id, ()):
                if other in self._position:
                    self._count_edge(pos, self._position[other], 1)
        self.graph.add_node(row.id)
        c["degree"][pos] = self.graph.degree(row.id)
        for other in self.graph.adj[row.id]:
            if other in self._position:
                c["degree"][self._position[other]] = self.graph.degree(other)

    def add_partnership(self, a: str, b: str) -> None:
        if a == b or self.graph.has_edge(a, b):
            return
        self._changed()
        self.graph.add_edge(a, b)
        if a in self._position and b in self._position:
            pa, pb = self._position[a], self._position[b]
            self._count_edge(pa, pb, 1)
        for city in (a, b):
            if city in self._position:
                self._cols["degree"][self._position[city]] = self.graph.degree(city)

    def add_decline(self, a: str, b: str, at: datetime) -> None:
        self._changed()
        for x, y in ((a, b), (b, a)):
            self.declined.setdefault(x, {})[y] = max(at, self.declined.get(x, {}).get(y, at))

    def eligibility_failures(self, row: CityRow) -> list[str]:
        failures = []
        if row.population < self.rules.min_population:
            failures.append(f"{row.name}: population {row.population:,} < {self.rules.min_population:,}")
        theme = self.rules.required_theme
        if theme and not any(row.themes.get(theme, {}).get(k, 0) > 0 for k in ("offer", "need")):
            failures.append(f"{row.name}: no offer or need in {theme}")
        return failures

    def _changed(self, *, structure: bool = True) -> None:
        """Scores may have moved: drop the kept top-k lists; with `structure` (the partnership graph changed) also
        the graph's CSR arrays. Column copies are patched in place (a new city, a profile update, a partnership)."""
        self._generation += 1
        self._topk_cache = {}
        if structure:
            self._csr_cache = self._hops_cache = None

    def _count_edge(self, pa: int, pb: int, sign: int) -> None:
        c = self._cols
        ca, cb = c["country"][pa], c["country"][pb]
        self.pair_counts[ca, cb] += sign
        if ca != cb:
            self.pair_counts[cb, ca] += sign
        c["partners_in"][pa, cb] += sign
        c["partners_in"][pb, ca] += sign
        if self._transposed is not None:
            self._transposed["partners_in"][cb, pa] += sign
            self._transposed["partners_in"][ca, pb] += sign
        if self._hops_cache is not None:  # (a new partnership drops them: here a city moves between countries)
            partners2_in = self._hops_cache[0]
            partners2_in[cb, self._partner_positions(pa)] += sign
            partners2_in[ca, self._partner_positions(pb)] += sign

    def _partner_positions(self, pos: int) -> np.ndarray:
        position = self._position
        return np.array([position[o] for o in self.graph.adj[self._rows[pos].id] if o in position], dtype=np.int64)

    def _grow(self, size: int) -> None:
        current = len(self._cols["active"])
        if size <= current:
            return
        capacity = max(size, 2 * current)
        self._transposed = self._hops_cache = None  # as wide as the old capacity
        for name, array in self._cols.items():
            grown = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
            grown[:current] = array
            self._cols[name] = grown

    # ------------------------------------------------------------------ scoring

    def _csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The partnership graph over index positions as CSR arrays (indptr, neighbours, 1/log degree)."""
        with self._lock:
            if self._csr_cache is None:
                n, position = len(self._rows), self._position
                ends = np.array(
                    [(position[a], position[b]) for a, b in self.graph.edges() if a in position and b in position],
                    dtype=np.int64,
                ).reshape(-1, 2)
                source, target = np.concatenate([ends[:, 0], ends[:, 1]]), np.concatenate([ends[:, 1], ends[:, 0]])
                indptr = np.zeros(n + 1, dtype=np.int64)
                indptr[1:] = np.cumsum(np.bincount(source, minlength=n))
                neighbours = target[np.argsort(source, kind="stable")]
                # Adamic-Adar weighs a common partner z by 1/log(degree of z) over the whole graph
                degree = self._cols["degree"][:n]
                inverse_log = np.zeros(n, dtype=np.float32)
                inverse_log[degree >= 2] = 1.0 / np.log(degree[degree >= 2])
                self._csr_cache = (indptr, neighbours, inverse_log)
            return self._csr_cache

    def _adjacency(self) -> sparse.csr_array:
        indptr, neighbours, _ = self._csr()
        n = len(indptr) - 1
        return sparse.csr_array((np.ones(len(neighbours)), neighbours, indptr), shape=(n, n))

    def _countries_in_use(self) -> int:
        return min(len(self._countries.index), MAX_COUNTRIES)

    def _hops(self) -> tuple[np.ndarray, np.ndarray]:
        """Summed over each city's partners: their partners in each country (countries, capacity) int32, and their
        degrees (capacity,). As wide as the columns' capacity, so a new city without partners is in place."""
        if (kept := self._hops_cache) is None:
            adjacency, c = self._adjacency(), self._cols
            n, capacity = adjacency.shape[0], len(c["active"])
            partners2_in = np.zeros((MAX_COUNTRIES, capacity), dtype=np.int32)
            used = self._countries_in_use()  # no city has partners in a country not seen
            partners2_in[:used, :n] = (adjacency @ c["partners_in"][:n, :used].astype(np.float64)).T
            partners_degree = np.zeros(capacity)
            partners_degree[:n] = adjacency @ c["degree"][:n].astype(np.float64)
            kept = self._hops_cache = (partners2_in, partners_degree)
        return kept

    def _country_terms(self) -> tuple[np.ndarray, float, np.ndarray]:
        """Each country's partnerships (one inside a country counts for both ends), their total, and the log
        population of each country's largest city; kept until the index changes."""
        kept = self._country_cache
        if kept is None or kept[0] != self._generation:
            country_degree = (self.pair_counts.sum(axis=1) + np.diagonal(self.pair_counts)).astype(np.float64)
            n = len(self._rows)
            top_logpop = np.zeros(MAX_COUNTRIES)
            np.maximum.at(top_logpop, self._cols["country"][:n], self._cols["logpop"][:n])
            kept = self._country_cache = (self._generation, country_degree, float(country_degree.sum()), top_logpop)
        return kept[1:]

    def _three_hop_block(self, a: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Walks of length 3 from each city of `a` to each of `rows` (their partners' partners partner): the
        two-step walks from each of `a` to every city, summed over each of `rows`' partners."""
        indptr, neighbours, _ = self._csr()
        n = len(indptr) - 1
        lengths = indptr[a + 1] - indptr[a]
        block_of_z, z = np.repeat(np.arange(len(a)), lengths), neighbours[_ranges(indptr[a], lengths)]
        lengths = indptr[z + 1] - indptr[z]
        ends = np.repeat(block_of_z, lengths) * n + neighbours[_ranges(indptr[z], lengths)]
        two_steps = np.bincount(ends, minlength=len(a) * n).reshape(len(a), n).astype(np.float64)
        lengths = indptr[rows + 1] - indptr[rows]
        out = np.zeros((len(a), len(rows)))
        if (has := lengths > 0).any():
            partners = neighbours[_ranges(indptr[rows], lengths)]
            out[:, has] = np.add.reduceat(two_steps[:, partners], (np.cumsum(lengths) - lengths)[has], axis=1)
        return out

    def _near(self) -> tuple[sparse.csr_array, sparse.csr_array]:
        """Each city's NEAR_CITIES nearest other cities (great circle) as a sparse matrix (row: the city, columns: its
        near ones), and its transpose. The lists come from a k-d tree, then follow a few new or moved cities in
        place (`_follow_moves`)."""
        with self._lock:
            if self._near_moved:
                self._near_lists = _follow_moves(self._near_lists, self._rows, sorted(self._near_moved))
                self._near_moved.clear()
            if self._near_lists is None:
                self._near_lists = _nearest_cities(self._rows)
            if self._near_cache is None:
                _, near, _ = self._near_lists
                n, k = near.shape
                nearby = sparse.csr_array((np.ones(near.size), near.ravel(), np.arange(n + 1) * k), shape=(n, n))
                reverse = nearby.T.tocsr()
                reverse.sort_indices()
                self._near_cache = (nearby, reverse)
            return self._near_cache

    def _near_block(self, a: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
        """For each city of `a` and each of `rows`: partnerships between one and the other's near cities (either way),
        and between their near cities (see `scoring.REALISM_FEATURES`)."""
        nearby, nearby_t = self._near()
        partners = self._adjacency()
        from_near = nearby[a] @ partners  # partnerships of a's near cities, to every city
        to_a = (partners[a] @ nearby_t).toarray()  # a's partners, seen from every city that has them as near ones
        ties = (from_near @ nearby_t).toarray()
        return {"near_partners": from_near.toarray()[:, rows] + to_a[:, rows], "near_ties": ties[:, rows]}

    def _columns_t(self) -> dict:
        """Contiguous column-major copies (feature × city) for fast products against every city, as wide as the
        columns' capacity: a new city fills its column in place. Use [:, :n]."""
        with self._lock:
            if self._transposed is None:
                c = self._cols
                self._transposed = {
                    name: np.ascontiguousarray(c[name].T)
                    for name in ("offer", "need", "offer_level", "need_level", "partners_in")
                }
            return self._transposed

    def _network_block(self, a: np.ndarray, column: np.ndarray | None, shape) -> tuple[np.ndarray, np.ndarray]:
        """Adamic-Adar and common-partner counts of each city of `a` with each column (two-hop walk over
        the graph, all rows at once). `column` maps a position to its column (-1: not a column), None = identity."""
        aa = np.zeros(shape, dtype=np.float32)
        common = np.zeros(shape, dtype=np.float32)
        indptr, neighbours, inverse_log = self._csr()
        starts, ends = indptr[a], indptr[a + 1]
        if not (ends > starts).any():
            return aa, common
        # (row, z) for every partner z of every row
        lengths = ends - starts
        rows_z = np.repeat(np.arange(len(a)), lengths)
        z = neighbours[_ranges(starts, lengths)]
        keep = inverse_log[z] > 0
        rows_z, z = rows_z[keep], z[keep]
        # (row, y) for every partner y of each z
        lengths = indptr[z + 1] - indptr[z]
        rows_y = np.repeat(rows_z, lengths)
        y = neighbours[_ranges(indptr[z], lengths)]
        w = np.repeat(inverse_log[z], lengths)
        if column is not None:
            cols = column[y]
            ok = cols >= 0
            rows_y, cols, w = rows_y[ok], cols[ok], w[ok]
        else:
            cols = y
        flat = rows_y * shape[1] + cols
        np.add.at(aa.reshape(-1), flat, w)
        np.add.at(common.reshape(-1), flat, 1.0)
        return aa, common

    def factor_values(self, block: np.ndarray, rows: np.ndarray | slice) -> dict[str, np.ndarray]:
        """Each factor's value in [0, 1] for every pair (block[i], rows[j]): arrays of shape (len(block), m)."""
        c = self._cols
        n = len(self._rows)
        a, rows = np.asarray(block), np.asarray(rows)
        # All cities in order: slices are views, fancy indexing would copy every column.
        everyone = len(rows) == n and n > 0 and rows[0] == 0 and rows[-1] == n - 1
        sel = slice(0, n) if everyone else rows
        offer, need, need_total = c["offer"], c["need"], c["need_total"]
        if everyone:
            t = self._columns_t()
            offer_t, need_t = t["offer"][:, :n], t["need"][:, :n]
        else:
            offer_t, need_t = offer[sel].T, need[sel].T
        met_to_a = need[a] @ offer_t  # what each candidate offers against a's needs
        met_to_b = offer[a] @ need_t
        total_a, total_b = need_total[a][:, None], need_total[rows][None, :]
        gain_a, gain_b = scoring.gain(met_to_a, total_a), scoring.gain(met_to_b, total_b)
        shared = scoring.shared_priorities(need[a] @ need_t, total_a, total_b)
        distance_km = scoring.distance_km(c["xyz"][a] @ c["xyz"][sel].T)
        corridor = (c["corridors"][a][:, None] & c["corridors"][rows][None, :]) != 0
        lang_a, lang_b = c["languages"][a], c["languages"][sel]
        language = np.zeros(corridor.shape, dtype=bool)
        for word in range(lang_a.shape[1]):
            if lang_a[:, word].any():
                language |= (lang_a[:, word][:, None] & lang_b[:, word][None, :]) != 0
        country_a, country_b = c["country"][a], c["country"][sel]
        pair_count = self.pair_counts[country_a][:, country_b]
        if everyone:
            column = None
        else:
            column = np.full(n, -1, dtype=np.int64)
            column[rows] = np.arange(len(rows))
        aa, common = self._network_block(a, column, met_to_a.shape)
        degree_a, degree_b = c["degree"][a][:, None], c["degree"][rows][None, :]
        country_degree, total_degree, top_logpop = self._country_terms()
        partners2_in, partners_degree = self._hops()
        inputs = dict(
            distance_km=distance_km,
            same_country=country_a[:, None] == country_b[None, :],
            logpop_a=c["logpop"][a][:, None],
            logpop_b=c["logpop"][rows][None, :],
            top_logpop_a=top_logpop[country_a][:, None],
            top_logpop_b=top_logpop[country_b][None, :],
            pair_count=pair_count,
            country_degree_a=country_degree[country_a][:, None],
            country_degree_b=country_degree[country_b][None, :],
            total_degree=total_degree,
            adamic_adar=aa,
            common=common,
            degree_a=degree_a,
            degree_b=degree_b,
            a_in_country_b=c["partners_in"][a][:, country_b],
            b_in_country_a=(
                self._columns_t()["partners_in"][country_a, :n] if everyone else c["partners_in"][sel][:, country_a].T
            ),
            two_hop_a_in_country_b=partners2_in[country_b[None, :], a[:, None]],
            two_hop_b_in_country_a=partners2_in[country_a[:, None], rows[None, :]],
            two_hop_degree_a=partners_degree[a][:, None],
            two_hop_degree_b=partners_degree[rows][None, :],
            three_hop=self._three_hop_block(a, rows),
            **self._near_block(a, rows),
        )
        realism = self.realism.probability(feature_arrays(**inputs))
        values = {
            "complementarity": scoring.complementarity(gain_a, gain_b),
            "shared_priorities": shared,
            "distance": scoring.distance_value(distance_km),
            "corridor": corridor.astype(np.float32),
            "language": language.astype(np.float32),
            "timezone": scoring.timezone_value(c["utc"][a][:, None], c["utc"][rows][None, :]),
            "country_affinity": scoring.affinity_value(pair_count),
            "network": scoring.network_value(aa),
            "realism": realism,
            "hub_damping": (scoring.hubness(degree_a) + scoring.hubness(degree_b)) / 2.0,
            # not factors: what the explanation shows besides
            "_gain_a": gain_a,
            "_gain_b": gain_b,
            "_distance_km": distance_km,
        }
        values = {name: np.broadcast_to(v, met_to_a.shape) for name, v in values.items()}
        values["_realism_inputs"] = inputs
        return values

    def score(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """The sum of weight × value over the factors (the parts of an explanation add up to this)."""
        total = None
        for name, weight in self.weights.factors().items():
            part = weight * values[name].astype(np.float64)
            total = part if total is None else total + part
        return total

    def check_masks(self, block: np.ndarray, rows: np.ndarray, values: dict, now: datetime) -> dict[str, np.ndarray]:
        """Each constraint (see CHECKS) as a boolean array over (block, rows): True = passed."""
        c = self._cols
        a = np.asarray(block)
        shape = (len(a), len(rows))
        ids = self._rows
        country_a, country_b = c["country"][a][:, None], c["country"][rows][None, :]
        not_partners = np.ones(shape, dtype=bool)
        not_declined = np.ones(shape, dtype=bool)
        excluded = np.zeros(shape, dtype=bool)
        identity = len(rows) == len(self._rows) and (len(rows) == 0 or (rows[0] == 0 and rows[-1] == len(rows) - 1))
        if identity:
            column = None
        else:
            column = np.full(len(self._rows), -1, dtype=np.int64)
            column[rows] = np.arange(len(rows))

        def col(city_id: str):
            pos = self._position.get(city_id)
            if pos is None:
                return None
            if column is None:
                return pos
            j = int(column[pos])
            return j if j >= 0 else None

        for i, pos in enumerate(a):
            city = ids[pos]
            for partner in self.graph.adj.get(city.id, ()):
                if (j := col(partner)) is not None:
                    not_partners[i, j] = False
            for other, at in self.declined.get(city.id, {}).items():
                if now - at < DECLINE_EXCLUSION and (j := col(other)) is not None:
                    not_declined[i, j] = False
            if city.excluded_countries:
                bad = [self._countries.index[x] for x in city.excluded_countries if x in self._countries.index]
                excluded[i] |= np.isin(c["country"][rows], bad)
        for p in self._excluders:
            j = col(self._rows[p].id)
            if j is None:
                continue
            codes = set(self._rows[p].excluded_countries)
            for i, pos in enumerate(a):
                if ids[pos].country_code in codes:
                    excluded[i, j] = True
        capacity_ok = c["degree"] < c["capacity"]
        same_ok = np.ones(shape, dtype=bool) if self.rules.allow_same_country else np.asarray(country_a != country_b)
        return {
            "not_itself": a[:, None] != np.asarray(rows)[None, :],
            "published": np.broadcast_to(c["active"][a][:, None] & c["active"][rows][None, :], shape),
            "not_partners": not_partners,
            "not_declined": not_declined,
            "city_capacity": np.broadcast_to(capacity_ok[a][:, None], shape),
            "partner_capacity": np.broadcast_to(capacity_ok[rows][None, :], shape),
            "countries_not_excluded": ~excluded,
            "same_country_allowed": np.broadcast_to(same_ok, shape),
            "eligible": np.broadcast_to(c["eligible"][a][:, None] & c["eligible"][rows][None, :], shape),
            "both_gain": values["complementarity"] > 0,
        }

    # ------------------------------------------------------------------ answers

    def _kernel_inputs(self, now: datetime) -> tuple[scoring.Cities, scoring.Links, scoring.Model]:
        """What the compiled kernel reads: column views, the graph and the declines as CSR arrays; kept
        until the index changes (declines carry their time, so `now` only enters the model)."""
        kept = self._kernel_cache
        if kept is None or kept[0] != self._generation:
            kept = self._kernel_cache = (self._generation, *self._build_kernel_inputs())
        _, cities, links, model = kept
        return cities, links, model._replace(now=now.timestamp())

    def _build_kernel_inputs(self) -> tuple[scoring.Cities, scoring.Links, scoring.Model]:
        c, n = self._cols, len(self._rows)
        t = self._columns_t()
        partners2_in, partners_degree = self._hops()
        country_degree, total_degree, top_logpop = self._country_terms()
        realism = self.realism
        beta = realism.coef / realism.std
        degree = c["degree"][:n]
        logpop, country = c["logpop"][:n].astype(np.float64), c["country"][:n]
        excluded = np.zeros((n, MAX_COUNTRIES // 64), dtype=np.uint64)
        for p in self._excluders:
            for code in self._rows[p].excluded_countries:
                if (i := self._countries.index.get(code)) is not None:
                    excluded[p, i // 64] |= np.uint64(1) << np.uint64(i % 64)
        cities = scoring.Cities(
            offer=t["offer_level"],
            need=t["need_level"],
            need_total=c["need_total"][:n],
            xyz=c["xyz"][:n],
            utc=c["utc"][:n],
            logpop=c["logpop"][:n],
            country=c["country"][:n],
            corridors=c["corridors"][:n],
            languages=c["languages"][:n],
            hub=scoring.hubness(degree.astype(np.float64)),
            degree=degree,
            open=c["active"][:n] & c["eligible"][:n] & (degree < c["capacity"][:n]),
            excluded=excluded,
            has_excluded=excluded.any(axis=1),
            partners_in=t["partners_in"],
            partners2_in=partners2_in,
            partners_degree=partners_degree[:n],
            realism_city=scoring.realism_city_terms(beta, logpop, np.log1p(degree.astype(np.float64))),
            relative_logpop=logpop - top_logpop[country],
        )
        declines = sorted(
            (self._position[a], self._position[b], at.timestamp())
            for a, others in self.declined.items()
            if a in self
            for b, at in others.items()
            if b in self
        )
        declined = np.array(declines, dtype=np.float64).reshape(-1, 3)
        declined_indptr = np.zeros(n + 1, dtype=np.int64)
        declined_indptr[1:] = np.cumsum(np.bincount(declined[:, 0].astype(np.int64), minlength=n))
        indptr, neighbours, inverse_log = self._csr()
        nearby, nearer = self._near()
        links = scoring.Links(
            indptr=indptr,
            neighbours=neighbours,
            inverse_log=inverse_log.astype(np.float64),
            near_indptr=nearby.indptr.astype(np.int64),
            near=nearby.indices.astype(np.int64),
            nearer_indptr=nearer.indptr.astype(np.int64),
            nearer=nearer.indices.astype(np.int64),
            declined_indptr=declined_indptr,
            declined=declined[:, 1].astype(np.int64),
            declined_at=declined[:, 2].copy(),
        )
        factors = self.weights.factors()
        model = scoring.Model(
            weights=np.array([factors[name] for name in scoring.FACTOR_ORDER], dtype=np.float64),
            realism_beta=beta,
            realism_offset=float(realism.intercept - (beta * realism.mean).sum()),
            countries=self._countries_in_use(),
            pair_counts=self.pair_counts,
            affinity=scoring.affinity_value(self.pair_counts.astype(np.float64)),
            lift=scoring.country_lift(
                self.pair_counts.astype(np.float64), country_degree[:, None], country_degree[None, :], total_degree
            ),
            log_country_degree=np.log1p(country_degree),
            top_logpop=top_logpop,
            allow_same_country=self.rules.allow_same_country,
            now=0.0,
            decline_seconds=DECLINE_EXCLUSION.total_seconds(),
            distance_bound=scoring.DISTANCE_BOUND,
            log1p=scoring.LOG1P,
            realism_distance_bound=scoring.realism_distance_bounds(beta),
        )
        return cities, links, model

    def allowed_scores(self, block: np.ndarray, rows: np.ndarray, *, now: datetime | None = None) -> np.ndarray:
        """Scores of every pair (block[i], rows[j]); -inf where a constraint fails."""
        block, rows = np.asarray(block, dtype=np.int64), np.asarray(rows, dtype=np.int64)
        return scoring.score_rows(block, rows, *self._kernel_inputs(now or datetime.now(UTC)))

    def ranked(
        self,
        block: np.ndarray,
        k: int,
        *,
        candidates: np.ndarray | None = None,
        min_score: float = 0.0,
        now: datetime | None = None,
        inputs: tuple | None = None,
    ) -> list[list[tuple[int, float]]]:
        """For each city of `block`, its top `k` allowed partners among `candidates` as (position, score),
        best first (ties: lower position first)."""
        block = np.asarray(block, dtype=np.int64)
        rows = self.positions() if candidates is None else np.asarray(candidates, dtype=np.int64)
        inputs = inputs or self._kernel_inputs(now or datetime.now(UTC))
        positions, scores = scoring.rank_rows(block, rows, k, float(min_score), *inputs)
        return [
            [(int(p), float(s)) for p, s in zip(positions[i], scores[i], strict=True) if p >= 0]
            for i in range(len(block))
        ]

    def ranked_all(
        self,
        positions: np.ndarray,
        k: int,
        *,
        min_score: float = 0.0,
        block_size: int = 256,
        now: datetime | None = None,
    ) -> dict[int, list[tuple[int, float]]]:
        """Every city's top `k` among `positions` (blocks of cities ranked by the compiled kernel, on every core).

        Kept until the index changes: a later call for the same cities with a smaller `k` or a higher
        `min_score` takes the best of the kept lists (they are sorted), e.g. a round after the top 20."""
        positions = np.asarray(positions, dtype=np.int64)
        now = now or datetime.now(UTC)
        # declines expire with time: then the answer depends on `now`, to the second
        key = (positions.tobytes(), now.replace(microsecond=0) if self.declined else None)
        generation = self._generation
        kept = self._topk_cache.get(key)
        if kept is not None and kept[0] >= k and kept[1] <= min_score:
            return {p: [(q, s) for q, s in top[:k] if s >= min_score] for p, top in kept[2].items()}

        inputs = self._kernel_inputs(now)

        def one(start: int) -> list:
            block = positions[start : start + block_size]
            tops = self.ranked(block, k, candidates=positions, min_score=min_score, inputs=inputs)
            return list(zip(block.tolist(), tops, strict=True))

        workers = min(os.cpu_count() or 1, 4)
        block_size = min(block_size, max(16, -(-len(positions) // (4 * workers))))  # a few blocks per core
        starts = range(0, len(positions), block_size)
        if workers > 1 and len(positions) > 2 * block_size:
            with ThreadPoolExecutor(workers) as pool:
                parts = list(pool.map(one, starts))
        else:
            parts = [one(start) for start in starts]
        found = {pos: top for part in parts for pos, top in part}
        if self._generation == generation:
            self._topk_cache[key] = (k, min_score, found)
        return found

    def suggest(
        self,
        city_id: str,
        k: int,
        *,
        theme: str | None = None,
        corridor: str | None = None,
        country: str | None = None,
        now: datetime | None = None,
    ) -> list[Suggestion]:
        """The top `k` partners for `city_id`, best first, each passing every constraint (CHECKS)."""
        pos = self._position[city_id]
        candidates = None
        if theme or corridor or country:
            keep = []
            for p, row in enumerate(self._rows):
                if country and row.country_code != country:
                    continue
                if corridor and corridor not in row.corridors:
                    continue
                if theme and not any(row.themes.get(theme, {}).get(x, 0) > 0 for x in ("offer", "need")):
                    continue
                keep.append(p)
            candidates = np.array(keep, dtype=np.int64)
            if not len(candidates):
                return []
        [top] = self.ranked(np.array([pos]), k, candidates=candidates, now=now)
        if not top:
            return []
        partner_positions = np.array([p for p, _ in top])
        values = self.factor_values(np.array([pos]), partner_positions)
        result = []
        for j, (p, _) in enumerate(top):
            row = self._rows[p]
            contributions = self._contributions({name: values[name][0, j] for name in FACTORS})
            result.append(
                Suggestion(
                    city_id=row.id,
                    name=row.name,
                    country_code=row.country_code,
                    score=round(sum(contributions.values()), 6),
                    gain_to_city=round(float(values["_gain_a"][0, j]), 6),
                    gain_to_partner=round(float(values["_gain_b"][0, j]), 6),
                    contributions=contributions,
                    themes_to_city=theme_flows(row, self._rows[pos]),
                    themes_to_partner=theme_flows(self._rows[pos], row),
                    constraints_passed=list(CHECKS),
                )
            )
        return result

    def _contributions(self, values: dict) -> dict[str, float]:
        return {name: round(weight * float(values[name]), 6) + 0.0 for name, weight in self.weights.factors().items()}

    def explain(self, a: str, b: str, *, now: datetime | None = None) -> Explanation:
        """The score of any pair, its parts, the themes behind them, and each constraint passed or failed."""
        now = now or datetime.now(UTC)
        pa, pb = self._position[a], self._position[b]
        block, rows = np.array([pa]), np.array([pb])
        values = self.factor_values(block, rows)
        masks = self.check_masks(block, rows, values, now)
        row_a, row_b = self._rows[pa], self._rows[pb]
        flat = {name: float(v[0, 0]) for name, v in values.items() if name != "_realism_inputs"}
        contributions = self._contributions(flat)
        checks = [Check(name, bool(masks[name][0, 0]), self._check_detail(name, row_a, row_b, now)) for name in CHECKS]
        gains = (
            f"{row_a.name} gains {flat['_gain_a']:.2f}, {row_b.name} gains {flat['_gain_b']:.2f} (share of needs met)"
        )
        checks[-1] = Check("both_gain", checks[-1].passed, gains)
        shared = [t for t in THEME_IDS if min(level_of(row_a, t, "need"), level_of(row_b, t, "need")) > 0]
        return Explanation(
            city_a=a,
            city_b=b,
            score=round(sum(contributions.values()), 6),
            eligible=all(check.passed for check in checks),
            values={name: round(flat[name], 6) for name in FACTORS},
            contributions=contributions,
            gain_to_a=round(flat["_gain_a"], 6),
            gain_to_b=round(flat["_gain_b"], 6),
            themes_to_a=theme_flows(row_b, row_a),
            themes_to_b=theme_flows(row_a, row_b),
            shared_needs=sorted(shared, key=lambda t: -min(level_of(row_a, t, "need"), level_of(row_b, t, "need"))),
            checks=checks,
            distance_km=round(flat["_distance_km"], 1),
        )

    def city_checks(self, city_id: str, *, now: datetime | None = None) -> list[Check]:
        """The constraints on the city itself: published, below its capacity, eligible under the rules."""
        row, pos, c = self.city(city_id), self._position[city_id], self._cols
        now = now or datetime.now(UTC)
        return [
            Check("published", row.status == "published", f"{row.name} is {row.status}"),
            Check(
                "city_capacity",
                bool(c["degree"][pos] < c["capacity"][pos]),
                self._check_detail("city_capacity", row, row, now),
            ),
            Check("eligible", bool(c["eligible"][pos]), self._check_detail("eligible", row, row, now)),
        ]

    def _check_detail(self, name: str, a: CityRow, b: CityRow, now: datetime) -> str:
        degree = self._cols["degree"]
        da, db = int(degree[self._position[a.id]]), int(degree[self._position[b.id]])
        at = self.declined.get(a.id, {}).get(b.id)
        rules = self.rules
        return {
            "not_itself": "a city is never its own partner",
            "published": f"{a.name} is {a.status}, {b.name} is {b.status}",
            "not_partners": "already partners" if self.graph.has_edge(a.id, b.id) else "not yet partners",
            "not_declined": (
                f"declined on {at.date().isoformat()} (excluded for 12 months)"
                if at and now - at < DECLINE_EXCLUSION
                else "not declined within 12 months"
            ),
            "city_capacity": f"{a.name} has {da} partners, capacity {a.capacity}",
            "partner_capacity": f"{b.name} has {db} partners, capacity {b.capacity}",
            "countries_not_excluded": (
                f"{a.name} excludes {sorted(a.excluded_countries) or 'no country'}, "
                f"{b.name} excludes {sorted(b.excluded_countries) or 'no country'}"
            ),
            "same_country_allowed": (
                f"{a.country_code}–{b.country_code}; same-country pairs "
                + ("allowed" if rules.allow_same_country else "not allowed")
            ),
            "eligible": "; ".join(self.eligibility_failures(a) + self.eligibility_failures(b))
            or f"rules: population ≥ {rules.min_population:,}"
            + (f", theme {rules.required_theme}" if rules.required_theme else ""),
            "both_gain": "both cities must gain",
        }[name]


def compile_kernel() -> None:
    """Compile the ranking kernel (or load it from numba's on-disk cache) before the first request needs it."""
    index = MatchIndex(capacity=2, realism=RealismModel.neutral())
    for code in ("CN", "KZ"):
        index.upsert(CityRow(id=code, version=1, name=code, country_code=code, status="published", themes={}))
    index.ranked(np.array([0]), 1)


def level_of(row: CityRow, theme: str, kind: str) -> int:
    return int(row.themes.get(theme, {}).get(kind, 0))


def theme_flows(giver: CityRow, taker: CityRow, top: int = 3) -> list[ThemeFlow]:
    """The themes where `giver` meets `taker`'s needs, strongest first."""
    flows = []
    for theme, levels in giver.themes.items():
        offer, need = int(levels.get("offer", 0)), level_of(taker, theme, "need")
        if min(offer, need) > 0:
            flows.append(ThemeFlow(theme, giver.name, offer, taker.name, need))
    flows.sort(key=lambda f: (-min(f.offer, f.need), -f.need, f.theme))
    return flows[:top]
