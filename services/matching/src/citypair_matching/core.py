"""The matching core: pure, no I/O. Cities as numpy rows, partnerships as a networkx graph.

The score of a pair is two-sided: `gain_to_x` is the share of x's needs the other city can
meet (sum over themes of min(offer, need) / sum of need), and the pair's score is the
harmonic mean of both gains, so a pair where one side gains nothing scores 0.
"""

from dataclasses import dataclass

import networkx as nx
import numpy as np

from citypair_shared.themes import THEME_IDS

WEIGHTS_VERSION = "slice-1"


@dataclass(frozen=True)
class CityRow:
    id: str
    version: int
    name: str
    country_code: str
    status: str
    themes: dict  # theme -> {"offer": int, "need": int}


@dataclass(frozen=True)
class Suggestion:
    city_id: str
    name: str
    country_code: str
    score: float
    gain_to_city: float
    gain_to_partner: float


def theme_vectors(themes: dict) -> tuple[np.ndarray, np.ndarray]:
    offer = np.array([themes.get(t, {}).get("offer", 0) for t in THEME_IDS], dtype=np.float32)
    need = np.array([themes.get(t, {}).get("need", 0) for t in THEME_IDS], dtype=np.float32)
    return offer, need


def harmonic_mean(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    total = x + y
    return np.divide(2 * x * y, total, out=np.zeros_like(total), where=total > 0)


class MatchIndex:
    """Every active city's offer/need rows (grown in place) and the partnership graph."""

    def __init__(self, capacity: int = 1024):
        width = len(THEME_IDS)
        self._offer = np.zeros((capacity, width), dtype=np.float32)
        self._need = np.zeros((capacity, width), dtype=np.float32)
        self._active = np.zeros(capacity, dtype=bool)
        self._rows: list[CityRow] = []
        self._position: dict[str, int] = {}
        self.graph = nx.Graph()

    def __len__(self) -> int:
        return len(self._position)

    def __contains__(self, city_id: str) -> bool:
        return city_id in self._position

    def city(self, city_id: str) -> CityRow:
        return self._rows[self._position[city_id]]

    def upsert(self, row: CityRow) -> None:
        """Add or replace a city; ignored if the index already holds a newer version."""
        pos = self._position.get(row.id)
        if pos is None:
            pos = len(self._rows)
            self._grow(pos + 1)
            self._rows.append(row)
            self._position[row.id] = pos
        elif self._rows[pos].version >= row.version:
            return
        self._rows[pos] = row
        self._offer[pos], self._need[pos] = theme_vectors(row.themes)
        self._active[pos] = row.status == "published"
        self.graph.add_node(row.id)

    def add_partnership(self, a: str, b: str) -> None:
        self.graph.add_edge(a, b)

    def suggest(self, city_id: str, k: int) -> list[Suggestion]:
        """The top `k` partners for `city_id`, best first; never itself, a partner, or an inactive city."""
        pos = self._position[city_id]
        n = len(self._rows)
        offer, need = self._offer[:n], self._need[:n]
        gain_to_city = _coverage(offer, need[pos])
        gain_to_partner = _coverage_rows(offer[pos], need)
        scores = harmonic_mean(gain_to_city, gain_to_partner)
        eligible = self._active[:n].copy()
        eligible[pos] = False
        for partner in self.graph.neighbors(city_id) if city_id in self.graph else ():
            eligible[self._position[partner]] = False
        scores = np.where(eligible & (scores > 0), scores, -1.0)
        k = min(k, int((scores > 0).sum()))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((top, -scores[top]))]
        return [
            Suggestion(
                city_id=self._rows[i].id,
                name=self._rows[i].name,
                country_code=self._rows[i].country_code,
                score=round(float(scores[i]), 6),
                gain_to_city=round(float(gain_to_city[i]), 6),
                gain_to_partner=round(float(gain_to_partner[i]), 6),
            )
            for i in top
        ]

    def _grow(self, size: int) -> None:
        if size <= len(self._active):
            return
        capacity = max(size, 2 * len(self._active))
        self._offer = _resized(self._offer, capacity)
        self._need = _resized(self._need, capacity)
        self._active = np.concatenate([self._active, np.zeros(capacity - len(self._active), dtype=bool)])


def _coverage(offers: np.ndarray, need: np.ndarray) -> np.ndarray:
    """Share of one city's `need` that each row of `offers` meets."""
    total = need.sum()
    if total == 0:
        return np.zeros(len(offers), dtype=np.float32)
    return np.minimum(offers, need).sum(axis=1) / total


def _coverage_rows(offer: np.ndarray, needs: np.ndarray) -> np.ndarray:
    """Share of each row of `needs` that one city's `offer` meets."""
    totals = needs.sum(axis=1)
    met = np.minimum(needs, offer).sum(axis=1)
    return np.divide(met, totals, out=np.zeros_like(totals), where=totals > 0)


def _resized(array: np.ndarray, capacity: int) -> np.ndarray:
    grown = np.zeros((capacity, array.shape[1]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown
