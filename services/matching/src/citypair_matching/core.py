"""The matching core: pure, no I/O. `MatchIndex` is what the service holds: it keeps the index's parts in step and
answers from them.

- `rows.py`: the cities as rows and numpy columns, the factor weights and the rules;
- `graph.py`: the partnership graph, the arrays derived from it, country counts and near-city lists, and when each
  is redone (every change goes through it);
- `scoring.py`: the factors (`FACTORS`), their formulas and the compiled ranking kernel, which ranks;
- `reference.py`: the same scores in plain numpy, with every constraint as a mask (the kernel is checked against it);
- `explain.py`: explanations, whose parts add up to the score;
- `realism.py`: the realism prior (its fitting is tooling: `citypair_cli.realism_fit`).

Every factor is symmetric in A and B, so score(A, B) == score(B, A); two-sided: the complementarity is the harmonic
mean of both gains, so a pair where one side gains nothing is not suggested.
"""

import os
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import networkx as nx
import numpy as np

from citypair_matching import reference, scoring
from citypair_matching.explain import CHECKS, Check, Explainer, Explanation, Suggestion
from citypair_matching.graph import PartnershipGraph
from citypair_matching.kernel_inputs import kernel_inputs
from citypair_matching.realism import RealismModel
from citypair_matching.rows import WEIGHTS, CityRow, Rules, Table, Weights
from citypair_matching.scoring import FACTORS

# The façade's vocabulary, for the service and its tests.
__all__ = [
    "CHECKS",
    "FACTORS",
    "Check",
    "CityRow",
    "Explanation",
    "MatchIndex",
    "Rules",
    "Suggestion",
    "TopLists",
    "Weights",
    "compile_kernel",
]


def available_cores() -> int:
    """The cores this process may run on (its affinity, e.g. a container's cpuset), not the machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _pairs(partners: list[int], scores: list[float], min_score: float) -> list[tuple[int, float]]:
    """One row of the kernel's answer as (position, score) pairs: unused slots (-1) and scores below
    `min_score` left out."""
    return [(q, s) for q, s in zip(partners, scores, strict=True) if q >= 0 and s >= min_score]


class TopLists(Mapping[int, list[tuple[int, float]]]):
    """`ranked_all`'s answer: each city's top partners as (position, score), best first. Kept as the kernel's
    arrays (a row per city, -1 in unused slots) and turned into a city's list only when it is read: making every
    list at once was 3 % of one thread's time in Python under the GIL (what cannot run in parallel) and took ~6×
    the arrays' memory. A narrower view (fewer, or only higher, scores) shares the arrays."""

    def __init__(self, cities: np.ndarray, partners: np.ndarray, scores: np.ndarray, k: int, min_score: float):
        self.cities, self.partners, self.scores = cities, partners, scores
        self.k, self.min_score = k, min_score
        self._rows: dict[int, int] | None = None

    def _row_of(self) -> dict[int, int]:
        if self._rows is None:  # a city listed twice is answered once, in its first place, as a dict would
            self._rows = {p: i for i, p in enumerate(self.cities.tolist())}
        return self._rows

    def __getitem__(self, city: int) -> list[tuple[int, float]]:
        i = self._row_of()[city]
        return _pairs(self.partners[i, : self.k].tolist(), self.scores[i, : self.k].tolist(), self.min_score)

    def __iter__(self) -> Iterator[int]:
        return iter(self._row_of())

    def __len__(self) -> int:
        return len(self._row_of())

    def narrowed(self, k: int, min_score: float) -> "TopLists":
        return TopLists(self.cities, self.partners, self.scores, min(k, self.k), max(min_score, self.min_score))


class MatchIndex:
    """Every city's rows (`table`), the partnership graph and recent declines (`links`), and the answers."""

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
        self.table = Table(capacity)
        self.links = PartnershipGraph(self.table)
        self._topk: tuple[int, dict] = (0, {})  # (generation, kept top-k lists)
        self._kernel: tuple | None = None  # (generation, the kernel's inputs)

    # ------------------------------------------------------------------ keeping the index

    def __len__(self) -> int:
        return len(self.table.position)

    def __contains__(self, city_id: str) -> bool:
        return city_id in self.table.position

    @property
    def graph(self) -> nx.Graph:
        return self.links.graph

    def city(self, city_id: str) -> CityRow:
        return self.table.rows[self.table.position[city_id]]

    def position(self, city_id: str) -> int:
        return self.table.position[city_id]

    def row_at(self, pos: int) -> CityRow:
        return self.table.rows[pos]

    def positions(self) -> np.ndarray:
        return np.arange(len(self.table))

    def upsert(self, row: CityRow) -> None:
        """Add or replace a city; ignored if the index already holds a newer version."""
        self.upsert_many([row])

    def upsert_many(self, rows: Iterable[CityRow]) -> None:
        """`upsert` each row, in order, leaving the index as one at a time would: a row not newer than the city's
        version held (or met earlier in `rows`) is skipped, and each city is written once, with the last version
        applied, new cities taking positions in the order they came. The per-change work is done once: rows that
        a later version replaces are not written, the graph's arrays grow once."""
        table, links = self.table, self.links
        latest: dict[str, CityRow] = {}  # in the order each city was first applied
        moved: set[str] = set()
        for row in rows:
            held = latest.get(row.id)
            if held is None and (pos := table.position.get(row.id)) is not None:
                held = table.rows[pos]
            if held is not None and held.version >= row.version:
                continue
            if held is not None and (held.latitude, held.longitude) != (row.latitude, row.longitude):
                moved.add(row.id)  # its neighbourhood is redone, even if a later version moves it back
            table.learn(row)  # vocabularies take their values in the order one at a time would meet them
            latest[row.id] = row
        if not latest:
            return
        new = [row for row in latest.values() if row.id not in table.position]
        first_new = len(table)
        table.append_many(new)
        for row in latest.values():
            pos = table.position[row.id]
            fresh = pos >= first_new
            before = row if fresh else table.rows[pos]
            if not fresh:
                links.leaving(pos, row)
            table.write(pos, row, eligible=not self.rules.failures(row))
            links.city_written(pos, before, row, new=fresh, moved=row.id in moved)

    def add_partnership(self, a: str, b: str) -> None:
        self.links.add_partnership(a, b)

    def add_decline(self, a: str, b: str, at: datetime) -> None:
        self.links.add_decline(a, b, at)

    # ------------------------------------------------------------------ the numpy reference

    def factor_values(self, block: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Each factor's value in [0, 1] for every pair (block[i], rows[j]): arrays of shape (len(block), m)."""
        return reference.factor_values(self.table, self.links, self.realism, block, rows)

    def score(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """The sum of weight × value over the factors (the parts of an explanation add up to this)."""
        return reference.score(self.weights, values)

    def check_masks(self, block: np.ndarray, rows: np.ndarray, values: dict, now: datetime) -> dict[str, np.ndarray]:
        """Each constraint (see CHECKS) as a boolean array over (block, rows): True = passed."""
        return reference.check_masks(self.table, self.links, self.rules, block, rows, values, now)

    # ------------------------------------------------------------------ answers

    def _kernel_inputs(self, now: datetime) -> tuple[scoring.Cities, scoring.Links, scoring.Model]:
        """What the compiled kernel reads, kept until the index changes (declines carry their time, so `now` only
        enters the model)."""
        generation = self.links.generation
        kept = self._kernel
        if kept is None or kept[0] != generation:
            inputs = kernel_inputs(self.table, self.links, self.realism, self.weights, self.rules)
            kept = self._kernel = (generation, *inputs)
        _, cities, links, model = kept
        return cities, links, model._replace(now=now.timestamp())

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
    ) -> list[list[tuple[int, float]]]:
        """For each city of `block`, its top `k` allowed partners among `candidates` as (position, score),
        best first (ties: lower position first)."""
        block = np.asarray(block, dtype=np.int64)
        rows = self.positions() if candidates is None else np.asarray(candidates, dtype=np.int64)
        inputs = self._kernel_inputs(now or datetime.now(UTC))
        partners, scores = scoring.rank_rows(block, rows, k, float(min_score), *inputs)
        return [_pairs(p, s, min_score) for p, s in zip(partners.tolist(), scores.tolist(), strict=True)]

    def ranked_all(
        self,
        positions: np.ndarray,
        k: int,
        *,
        min_score: float = 0.0,
        block_size: int = 256,
        now: datetime | None = None,
        threads: int | None = None,
    ) -> TopLists:
        """Every city's top `k` among `positions`: blocks of cities ranked by the compiled kernel on `threads`
        threads (default: every core this process may use). The kernel releases the GIL and each thread copies its
        block's rows into the answer's arrays: what runs one at a time is handing out blocks (no Python lists are
        made here, see `TopLists`).

        Kept until the index changes: a later call for the same cities with a smaller `k` or a higher
        `min_score` is served from the kept arrays (they are sorted), e.g. a round after the top 20."""
        positions = np.array(positions, dtype=np.int64)  # a copy: the answer keeps it
        now = now or datetime.now(UTC)
        # declines end with time: the answer depends on how many have ended by `now`
        key = (positions.tobytes(), self.links.declines_ended(now))
        generation = self.links.generation
        if self._topk[0] != generation:
            self._topk = (generation, {})
        kept = self._topk[1].get(key)
        if kept is not None and kept.k >= k and kept.min_score <= min_score:
            return kept.narrowed(k, min_score)

        inputs = self._kernel_inputs(now)
        partners, scores = np.empty((len(positions), k), dtype=np.int64), np.empty((len(positions), k))
        workers = max(1, threads or available_cores())
        # many blocks per thread (dealt as threads come free), so that the last ones leave little of a thread idle
        block_size = min(block_size, max(16, -(-len(positions) // (16 * workers))))

        def one(start: int) -> None:
            rows = slice(start, start + block_size)
            block = scoring.rank_rows(positions[rows], positions, k, float(min_score), *inputs)
            partners[rows], scores[rows] = block

        starts = range(0, len(positions), block_size)
        if workers > 1 and len(positions) > 2 * block_size:
            with ThreadPoolExecutor(workers) as pool:
                for _ in pool.map(one, starts):  # (consumed: a block's error is raised here)
                    pass
        else:
            for start in starts:
                one(start)
        found = TopLists(positions, partners, scores, k, min_score)
        if self._topk[0] == generation == self.links.generation:
            self._topk[1][key] = found
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
        pos = self.table.position[city_id]
        candidates = None
        if theme or corridor or country:
            keep = []
            for p, row in enumerate(self.table.rows):
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
        return self._explainer().suggestions(pos, top)

    def _explainer(self) -> Explainer:
        return Explainer(self.table, self.links, self.realism, self.weights, self.rules)

    def explain(self, a: str, b: str, *, now: datetime | None = None) -> Explanation:
        """The score of any pair, its parts, the themes behind them, and each constraint passed or failed."""
        return self._explainer().explain(a, b, now or datetime.now(UTC))

    def city_checks(self, city_id: str, *, now: datetime | None = None) -> list[Check]:
        """The constraints on the city itself: published, below its capacity, eligible under the rules."""
        return self._explainer().city_checks(city_id, now or datetime.now(UTC))


def compile_kernel() -> None:
    """Compile the ranking kernel (or load it from numba's on-disk cache) before the first request needs it."""
    index = MatchIndex(capacity=2, realism=RealismModel.neutral())
    for code in ("CN", "KZ"):
        index.upsert(CityRow(id=code, version=1, name=code, country_code=code, status="published", themes={}))
    index.ranked(np.array([0]), 1)
