"""The partnership graph (networkx) over the table's cities, what is derived from it, and when each part is redone.

Derived and kept: the graph as CSR arrays over positions, the two-hop sums (`hops`), the country-pair counts and
each country's totals, each city's near cities (a k-d tree, then followed in place), and the degree and
partners-in-country columns of the table. Every change to the index comes through `city_written`,
`add_partnership` or `add_decline`, which bump `generation` (what answer caches key on) and drop or patch exactly
the parts the change moves; nothing outside this module invalidates any of them.
"""

import bisect
import threading
from datetime import datetime, timedelta

import networkx as nx
import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from citypair_matching.rows import MAX_COUNTRIES, CityRow, Table

DECLINE_EXCLUSION = timedelta(days=365)
NEAR_CITIES = 20  # each city's nearest cities: partnerships between two neighbourhoods are a realism feature
NEAR_IN_PLACE = 8  # more new or moved cities than this: a new k-d tree (~65 ms at 25,000) beats updates in place


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
    redoes its own list and those of the cities that listed it (a product over every city each); a city that now
    has it nearer than its farthest swaps that farthest for it (its own list only). None (rebuild) for many cities
    at once, or when the lists' length changes."""
    if lists is None or len(moved) > NEAR_IN_PLACE or lists[1].shape[1] != NEAR_CITIES or len(rows) <= NEAR_CITIES:
        return None
    xyz, near, farthest = lists
    known = len(xyz)
    if len(rows) > known:  # the new cities' rows, filled below
        grown = len(rows) - known
        xyz = np.vstack([xyz, np.zeros((grown, 3))])
        near, farthest = np.vstack([near, np.repeat(near[:1], grown, axis=0)]), np.append(farthest, np.full(grown, 2.0))
    for pos in moved:
        xyz[pos] = _unit_vectors([rows[pos]])[0]
    for pos in moved:
        closeness = xyz @ xyz[pos]
        closeness[pos] = -np.inf
        listed_it = np.flatnonzero((near == pos).any(axis=1)) if pos < known else ()  # no list has a new city yet
        redo = {pos, *listed_it}
        for c in redo:
            near[c], farthest[c] = _nearest_to(xyz, c)
        for c in np.flatnonzero(closeness > farthest):
            if c not in redo and pos not in near[c]:  # (an earlier one's redo may have found it)
                _swap_farthest(xyz, near, farthest, c, pos)
    return xyz, near, farthest


def _swap_farthest(xyz: np.ndarray, near: np.ndarray, farthest: np.ndarray, c: int, pos: int) -> None:
    """City c's list with `pos`, now nearer than c's farthest, in place of that farthest (k products, not n)."""
    members = near[c]
    closeness = xyz[members] @ xyz[c]
    out = np.argmin(closeness)
    members[out], closeness[out] = pos, xyz[pos] @ xyz[c]
    near[c], farthest[c] = np.sort(members), float(closeness.min())


class PartnershipGraph:
    """Partnerships and recent declines between the table's cities (ids: a partnership may name a city the table
    does not hold yet), with the arrays derived from them."""

    def __init__(self, table: Table):
        self.table = table
        self.graph = nx.Graph()
        self.pair_counts = np.zeros((MAX_COUNTRIES, MAX_COUNTRIES), dtype=np.int32)
        self.declined: dict[str, dict[str, datetime]] = {}
        self.generation = 0  # bumped by every change that can move a score or a constraint
        self._csr: tuple | None = None
        self._hops: tuple | None = None
        self._country: tuple | None = None  # (generation, country terms)
        self._near_lists: tuple | None = None  # (unit vectors, each city's nearest, cosine to its farthest of them)
        self._near_moved: set[int] = set()  # new or moved cities the lists do not follow yet
        self._near_matrices: tuple | None = None  # the lists as sparse matrices, both ways
        self._decline_ends: tuple | None = None  # (generation, when each decline stops excluding its pair, sorted)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ changes

    def leaving(self, pos: int, row: CityRow) -> None:
        """Before the city at `pos` becomes `row` (its columns still the old ones): a city that changes country
        takes its partnerships out of the old country's counts."""
        table = self.table
        if table.rows[pos].country_code != row.country_code:
            for other in self.graph.adj.get(row.id, ()):
                if other in table.position:
                    self._count_edge(pos, table.position[other], -1)

    def city_written(self, pos: int, before: CityRow, row: CityRow, *, new: bool, moved: bool = False) -> None:
        """After the table wrote `row` at `pos` (in place of `before`; the same row when `new`); `moved`: a version
        in between was elsewhere (`MatchIndex.upsert_many` writes only the last)."""
        table, graph = self.table, self.graph
        if self._hops is not None and len(self._hops[1]) != table.capacity:
            self._hops = None  # as wide as the columns were
        if new or moved or (before.latitude, before.longitude) != (row.latitude, row.longitude):
            self._near_moved.add(pos)  # neighbourhoods change with a new or moved city (applied when next needed)
            self._near_matrices = None
        # A new city without partnerships: the graph arrays gain an empty row when next read (`csr`).
        self._changed(structure=new and row.id in graph and graph.degree(row.id) > 0)
        if row.id in graph and (new or before.country_code != row.country_code):
            # partnerships recorded before the city arrived, or into its new country's counts
            for other in graph.adj[row.id]:
                if other in table.position:
                    self._count_edge(pos, table.position[other], 1)
        graph.add_node(row.id)
        degree = table.cols["degree"]
        degree[pos] = graph.degree(row.id)
        for other in graph.adj[row.id]:
            if other in table.position:
                degree[table.position[other]] = graph.degree(other)

    def add_partnership(self, a: str, b: str) -> None:
        if a == b or self.graph.has_edge(a, b):
            return
        self._changed()
        self.graph.add_edge(a, b)
        position = self.table.position
        if a in position and b in position:
            self._count_edge(position[a], position[b], 1)
        for city in (a, b):
            if city in position:
                self.table.cols["degree"][position[city]] = self.graph.degree(city)

    def add_decline(self, a: str, b: str, at: datetime) -> None:
        self._changed()
        for x, y in ((a, b), (b, a)):
            self.declined.setdefault(x, {})[y] = max(at, self.declined.get(x, {}).get(y, at))

    def declines_ended(self, now: datetime) -> int:
        """How many declines have stopped excluding their pair by `now`. Answers at two instants with the same
        count (and generation) are the same, so kept answers are keyed by it, not by the clock: keyed by the
        second, every view of the clusters page ranked all 25,000 cities again once a decline existed."""
        kept = self._decline_ends
        if kept is None or kept[0] != self.generation:
            ends = sorted(at + DECLINE_EXCLUSION for others in self.declined.values() for at in others.values())
            kept = self._decline_ends = (self.generation, ends)
        return bisect.bisect_right(kept[1], now)

    def _changed(self, *, structure: bool = True) -> None:
        """Scores may have moved: a new generation; with `structure` (the partnership graph changed) also drop the
        graph's CSR arrays and the two-hop sums. Column copies are patched in place."""
        self.generation += 1
        if structure:
            self._csr = self._hops = None

    def _count_edge(self, pa: int, pb: int, sign: int) -> None:
        c, transposed = self.table.cols, self.table.transposed
        ca, cb = c["country"][pa], c["country"][pb]
        self.pair_counts[ca, cb] += sign
        if ca != cb:
            self.pair_counts[cb, ca] += sign
        c["partners_in"][pa, cb] += sign
        c["partners_in"][pb, ca] += sign
        if transposed is not None:
            transposed["partners_in"][cb, pa] += sign
            transposed["partners_in"][ca, pb] += sign
        if self._hops is not None:  # (a new partnership drops them: here a city moves between countries)
            partners2_in = self._hops[0]
            partners2_in[cb, self._partner_positions(pa)] += sign
            partners2_in[ca, self._partner_positions(pb)] += sign

    def _partner_positions(self, pos: int) -> np.ndarray:
        position = self.table.position
        partners = self.graph.adj[self.table.rows[pos].id]
        return np.array([position[o] for o in partners if o in position], dtype=np.int64)

    # ------------------------------------------------------------------ derived, kept until a change moves them

    def csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The partnership graph over index positions as CSR arrays (indptr, neighbours, 1/log degree)."""
        with self._lock:
            n = len(self.table)
            if self._csr is not None and len(self._csr[0]) <= n:  # new cities since, none with partnerships
                indptr, neighbours, inverse_log = self._csr
                grown = n + 1 - len(indptr)
                indptr = np.concatenate([indptr, np.full(grown, indptr[-1])])
                self._csr = (indptr, neighbours, np.concatenate([inverse_log, np.zeros(grown, dtype=np.float32)]))
            if self._csr is None:
                position = self.table.position
                ends = np.array(
                    [(position[a], position[b]) for a, b in self.graph.edges() if a in position and b in position],
                    dtype=np.int64,
                ).reshape(-1, 2)
                source, target = np.concatenate([ends[:, 0], ends[:, 1]]), np.concatenate([ends[:, 1], ends[:, 0]])
                indptr = np.zeros(n + 1, dtype=np.int64)
                indptr[1:] = np.cumsum(np.bincount(source, minlength=n))
                neighbours = target[np.argsort(source, kind="stable")]
                # Adamic-Adar weighs a common partner z by 1/log(degree of z) over the whole graph
                degree = self.table.cols["degree"][:n]
                inverse_log = np.zeros(n, dtype=np.float32)
                inverse_log[degree >= 2] = 1.0 / np.log(degree[degree >= 2])
                self._csr = (indptr, neighbours, inverse_log)
            return self._csr

    def adjacency(self) -> sparse.csr_array:
        indptr, neighbours, _ = self.csr()
        n = len(indptr) - 1
        return sparse.csr_array((np.ones(len(neighbours)), neighbours, indptr), shape=(n, n))

    def hops(self) -> tuple[np.ndarray, np.ndarray]:
        """Summed over each city's partners: their partners in each country (countries, capacity) int32, and their
        degrees (capacity,). As wide as the columns' capacity, so a new city without partners is in place."""
        if (kept := self._hops) is None:
            adjacency, c = self.adjacency(), self.table.cols
            n, capacity = adjacency.shape[0], self.table.capacity
            partners2_in = np.zeros((MAX_COUNTRIES, capacity), dtype=np.int32)
            used = self.table.countries_in_use()  # no city has partners in a country not seen
            partners2_in[:used, :n] = (adjacency @ c["partners_in"][:n, :used].astype(np.float64)).T
            partners_degree = np.zeros(capacity)
            partners_degree[:n] = adjacency @ c["degree"][:n].astype(np.float64)
            kept = self._hops = (partners2_in, partners_degree)
        return kept

    def country_terms(self) -> tuple[np.ndarray, float, np.ndarray]:
        """Each country's partnerships (one inside a country counts for both ends), their total, and the log
        population of each country's largest city; kept until the index changes."""
        kept = self._country
        if kept is None or kept[0] != self.generation:
            country_degree = (self.pair_counts.sum(axis=1) + np.diagonal(self.pair_counts)).astype(np.float64)
            n, c = len(self.table), self.table.cols
            top_logpop = np.zeros(MAX_COUNTRIES)
            np.maximum.at(top_logpop, c["country"][:n], c["logpop"][:n])
            kept = self._country = (self.generation, country_degree, float(country_degree.sum()), top_logpop)
        return kept[1:]

    def near(self) -> tuple[sparse.csr_array, sparse.csr_array]:
        """Each city's NEAR_CITIES nearest other cities (great circle) as a sparse matrix (row: the city, columns: its
        near ones), and its transpose. The lists come from a k-d tree, then follow a few new or moved cities in
        place (`_follow_moves`)."""
        with self._lock:
            if self._near_moved:
                self._near_lists = _follow_moves(self._near_lists, self.table.rows, sorted(self._near_moved))
                self._near_moved.clear()
            if self._near_lists is None:
                self._near_lists = _nearest_cities(self.table.rows)
            if self._near_matrices is None:
                _, near, _ = self._near_lists
                n, k = near.shape
                nearby = sparse.csr_array((np.ones(near.size), near.ravel(), np.arange(n + 1) * k), shape=(n, n))
                reverse = nearby.T.tocsr()
                reverse.sort_indices()
                self._near_matrices = (nearby, reverse)
            return self._near_matrices
