"""Cities as rows: what a city is to the matching core, its numpy columns, the factor weights and the rules. Pure.

The theme levels are integers 0–5, so sum_t min(x_t, y_t) is a dot product of level-expanded 0/1 vectors: one
matrix product scores a block of cities against all others (`level_expanded`).
"""

import json
import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from citypair_matching.scoring import FACTORS
from citypair_shared.themes import THEME_IDS

LEVELS = 5
MAX_COUNTRIES = 256
LANGUAGE_BITS = 128
WEIGHTS_FILE = Path(__file__).parent / "data" / "weights.json"
# A reference instant for UTC offsets, so that scores do not move with daylight saving time.
_OFFSET_AT = datetime(2025, 1, 15, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Weights:
    """Factor weights, versioned: a score names the version it was computed with."""

    version: str
    values: tuple[float, ...]  # one per factor, in the order of `scoring.FACTORS`

    def __post_init__(self):
        if len(self.values) != len(FACTORS):
            raise ValueError(f"{len(self.values)} weights for {len(FACTORS)} factors {FACTORS}")

    @classmethod
    def load(cls, path: Path = WEIGHTS_FILE) -> "Weights":
        data = json.loads(path.read_text())
        version = data.pop("version")
        if set(data) != set(FACTORS):
            raise ValueError(f"{path}: weights for {sorted(data)}, the factors are {FACTORS}")
        return cls(version, tuple(data[name] for name in FACTORS))

    def factors(self) -> dict[str, float]:
        """Each factor's weight, in the order of the factors (the order scores are summed in)."""
        return dict(zip(FACTORS, self.values, strict=True))


WEIGHTS = Weights.load()


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


def level_of(row: CityRow, theme: str, kind: str) -> int:
    return int(row.themes.get(theme, {}).get(kind, 0))


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

    def failures(self, row: CityRow) -> list[tuple[str, dict]]:
        """Why the city is not eligible under these rules (empty: it is), as codes of explain.DETAILS with params."""
        failures = []
        if row.population < self.min_population:
            failures.append(
                (
                    "population_below",
                    {"city": row.name, "population": row.population, "min_population": self.min_population},
                )
            )
        theme = self.required_theme
        if theme and not any(row.themes.get(theme, {}).get(k, 0) > 0 for k in ("offer", "need")):
            failures.append(("no_required_theme", {"city": row.name, "theme": theme}))
        return failures


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


class _Vocabulary:
    """Small string → index vocabularies (countries, languages, corridors)."""

    def __init__(self, limit: int):
        self.limit, self.index = limit, {}

    def __call__(self, value: str) -> int:
        found = self.index.get(value)
        if found is None:
            found = self.index[value] = len(self.index) % self.limit
        return found


assert LEVELS * len(THEME_IDS) < 256, "the kernel sums theme levels in bytes (scoring._scan)"
_COLUMNS = {
    # name: (shape of one row, dtype)
    "offer": ((LEVELS * len(THEME_IDS),), np.float32),
    "need": ((LEVELS * len(THEME_IDS),), np.float32),
    "offer_level": ((len(THEME_IDS),), np.uint8),  # whole levels 0–5: the kernel's row sums read a byte a theme
    "need_level": ((len(THEME_IDS),), np.uint8),
    "need_total": ((), np.float32),
    "xyz": ((3,), np.float32),
    "utc": ((), np.float32),
    "logpop": ((), np.float32),
    "population": ((), np.int64),
    "country": ((), np.int32),
    "corridors": ((), np.int64),
    "languages": ((LANGUAGE_BITS // 64,), np.uint64),
    "capacity": ((), np.int32),
    "degree": ((), np.int32),  # written by the partnership graph (graph.py), as is partners_in
    "active": ((), bool),
    "eligible": ((), bool),
    "partners_in": ((MAX_COUNTRIES,), np.int16),
}
# Copied column-major (feature × city) for products against every city; patched in place when a column changes:
# the row's own by `Table.write`, partners_in by the partnership graph.
_OWN_TRANSPOSED = ("offer", "need", "offer_level", "need_level", "xyz")
_TRANSPOSED = (*_OWN_TRANSPOSED, "partners_in")


class Table:
    """Every city's row and its columns by position (grown in place, a city keeps its position)."""

    def __init__(self, capacity: int):
        self.cols = {name: np.zeros((capacity, *shape), dtype=dtype) for name, (shape, dtype) in _COLUMNS.items()}
        self.rows: list[CityRow] = []
        self.position: dict[str, int] = {}
        self.countries = _Vocabulary(MAX_COUNTRIES)
        self.languages = _Vocabulary(LANGUAGE_BITS)
        self.corridors = _Vocabulary(63)
        self.excluders: set[int] = set()  # positions of cities that exclude a country
        self.transposed: dict | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def capacity(self) -> int:
        return len(self.cols["active"])

    def append(self, row: CityRow) -> int:
        """A new city's position (its columns are written by `write`)."""
        self.append_many([row])
        return self.position[row.id]

    def append_many(self, rows: list[CityRow]) -> None:
        """New cities at the next positions, in order (the columns grown once)."""
        needed = len(self.rows) + len(rows)
        if needed > self.capacity:
            capacity = self.capacity
            while capacity < needed:  # doubled as often as one city at a time would
                capacity = max(capacity + 1, 2 * capacity)
            self.transposed = None  # as wide as the old capacity
            for name, array in self.cols.items():
                grown = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
                grown[: len(array)] = array
                self.cols[name] = grown
        for row in rows:
            self.position[row.id] = len(self.rows)
            self.rows.append(row)

    def learn(self, row: CityRow) -> None:
        """The row's country, corridors and languages in the vocabularies, in the order `write` takes them."""
        self.countries(row.country_code)
        for corridor in set(row.corridors):
            self.corridors(corridor)
        for language in set(row.languages):
            self.languages(language)

    def write(self, pos: int, row: CityRow, *, eligible: bool) -> None:
        """The city's row and its own columns (not those the partnership graph writes)."""
        self.rows[pos] = row
        c = self.cols
        offer, need = theme_vectors(row.themes)
        c["offer"][pos], c["need"][pos] = level_expanded(offer), level_expanded(need)
        c["offer_level"][pos], c["need_level"][pos] = offer, need
        c["need_total"][pos] = need.sum()
        lat, lon = math.radians(row.latitude), math.radians(row.longitude)
        c["xyz"][pos] = (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))
        if self.transposed is not None:
            for name in _OWN_TRANSPOSED:
                self.transposed[name][:, pos] = c[name][pos]
        c["utc"][pos] = utc_offset_hours(row.timezone, row.longitude)
        c["population"][pos] = row.population
        c["logpop"][pos] = math.log1p(max(row.population, 0))
        c["country"][pos] = self.countries(row.country_code)
        c["corridors"][pos] = sum(1 << self.corridors(x) for x in set(row.corridors))
        bits = np.zeros(LANGUAGE_BITS // 64, dtype=np.uint64)
        for language in set(row.languages):
            i = self.languages(language)
            bits[i // 64] |= np.uint64(1) << np.uint64(i % 64)
        c["languages"][pos] = bits
        c["capacity"][pos] = row.capacity
        c["active"][pos] = row.status == "published"
        c["eligible"][pos] = eligible
        if row.excluded_countries:
            self.excluders.add(pos)
        else:
            self.excluders.discard(pos)

    def columns_t(self) -> dict:
        """Contiguous column-major copies (feature × city) for fast products against every city, as wide as the
        columns' capacity: a new city fills its column in place. Use [:, :n]."""
        with self._lock:
            if self.transposed is None:
                self.transposed = {name: np.ascontiguousarray(self.cols[name].T) for name in _TRANSPOSED}
            return self.transposed

    def countries_in_use(self) -> int:
        return min(len(self.countries.index), MAX_COUNTRIES)
