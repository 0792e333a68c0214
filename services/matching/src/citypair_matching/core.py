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
from collections.abc import Iterable
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
    "Weights",
    "compile_kernel",
]


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
        key = (positions.tobytes(), now.replace(microsecond=0) if self.links.declined else None)
        generation = self.links.generation
        if self._topk[0] != generation:
            self._topk = (generation, {})
        kept = self._topk[1].get(key)
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
        if self._topk[0] == generation == self.links.generation:
            self._topk[1][key] = (k, min_score, found)
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
