"""The clusters found per query, answered at once while newer ones are found off the event loop (issue 18).

Finding clusters ranks every published city (seconds at 25,000 cities) and the clusters page asks for every view.
Each query's last clusters are kept with the index state they were found for: a request at that state gets them; a
request after a change gets them at once, marked stale, and starts a build in the background (one per query, however
many ask); only a query never answered waits, for that same build, while the loop goes on serving.

A build reads a `FrozenIndex`, copies taken on the loop, and runs on a worker thread.
"""

import asyncio
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import NamedTuple

import numpy as np

from citypair_matching import scoring
from citypair_matching.clusters import Cluster
from citypair_matching.core import CityRow, MatchIndex, TopLists
from citypair_matching.kernel_inputs import kernel_inputs
from citypair_shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Found:
    """Clusters as found for one state of the index."""

    clusters: list[Cluster]
    state: Hashable
    computed_at: datetime  # when that state was taken


# Called on the loop when a build starts: copies what the build reads and returns the work, which runs on a thread.
Snapshot = Callable[[], Callable[[], Found]]


class ClusterCache:
    """The last clusters found per query (`key`) and the builds finding newer ones (the app holds it by its index)."""

    def __init__(self) -> None:
        self._found: dict[Hashable, Found] = {}
        self._building: dict[Hashable, asyncio.Task[Found]] = {}
        # One build at a time, on one thread: a build keeps a core busy for seconds, the loop keeps the others.
        self._one_at_a_time = asyncio.Lock()

    async def get(self, key: Hashable, state: Hashable, snapshot: Snapshot) -> tuple[Found, bool]:
        """The clusters for `key`, and whether they are stale (found for a state other than `state`)."""
        found = self._found.get(key)
        if found is not None and found.state == state:
            return found, False
        build = self.refresh(key, snapshot)
        if found is None:  # nothing to show yet. Shielded: a request that leaves does not end what others await.
            found = await asyncio.shield(build)
        return found, found.state != state

    def refresh(self, key: Hashable, snapshot: Snapshot) -> asyncio.Task[Found]:
        """The build under way for `key`, or a new one."""
        running = self._building.get(key)
        if running is None or running.done():  # (done: finished, though `_finished` has not run yet)
            running = self._building[key] = asyncio.create_task(self._build(key, snapshot), name=f"clusters {key}")
            running.add_done_callback(partial(self._finished, key))
        return running

    async def _build(self, key: Hashable, snapshot: Snapshot) -> Found:
        async with self._one_at_a_time:
            started = time.perf_counter()
            # On the loop, where each change to the index is made whole between two awaits; taken when the build
            # may start, so that it finds the latest state.
            work = snapshot()
            found = self._found[key] = await asyncio.to_thread(work)
        log.info("clusters.built", key=list(key), clusters=len(found.clusters), seconds=time.perf_counter() - started)
        return found

    def _finished(self, key: Hashable, build: asyncio.Task) -> None:
        """The build is no longer under way; if it failed, say why, even when nobody awaits it (a request that
        waits for it gets the error)."""
        if self._building.get(key) is build:
            del self._building[key]
        if not build.cancelled() and (error := build.exception()) is not None:
            log.error("clusters.build_failed", key=list(key), exc_info=error)


def _copied(part: NamedTuple) -> NamedTuple:
    """One of the kernel's input tuples (`scoring.Cities`, `Links`, `Model`) with every array a copy of its own."""
    arrays = {name: np.array(value) for name, value in part._asdict().items() if isinstance(value, np.ndarray)}
    return part._replace(**arrays)


class FrozenIndex:
    """The index as it was when taken, for finding clusters on another thread: what `clusters.find_clusters` asks of
    an index (`ranked_all`, `allowed_scores`, `row_at`), answered from copies.

    Copies, because event handlers go on changing the index on the loop while a build runs, and many of the kernel's
    inputs are the index's own arrays, written in place: the table's columns and their transposed copies
    (`Table.write`), degrees, partners per country, country-pair counts and two-hop sums (`PartnershipGraph`). A
    kernel reading them during a change could score a city half old, half new. Rows are frozen dataclasses: a copy of
    their list is enough. Taking it holds the loop once a build: 12–23 ms for 18.5 MB at 6,000 cities (measured); the
    arrays are as wide as the table's capacity, so about four times that at 25,000."""

    def __init__(self, index: MatchIndex):
        inputs = kernel_inputs(index.table, index.links, index.realism, index.weights, index.rules)
        self._cities, self._links, self._model = (_copied(part) for part in inputs)
        self._rows = list(index.table.rows)

    def positions(self) -> np.ndarray:
        return np.arange(len(self._rows))

    def row_at(self, pos: int) -> CityRow:
        return self._rows[pos]

    def ranked_all(self, positions: np.ndarray, k: int, *, now: datetime) -> TopLists:
        """Every city's top `k` among `positions`, as `MatchIndex.ranked_all`, on this thread alone (see
        `ClusterCache`)."""
        positions = np.asarray(positions, dtype=np.int64)
        partners, scores = scoring.rank_rows(positions, positions, k, 0.0, *self._inputs(now))
        return TopLists(positions, partners, scores, k, 0.0)

    def allowed_scores(self, block: np.ndarray, rows: np.ndarray, *, now: datetime) -> np.ndarray:
        """As `MatchIndex.allowed_scores`."""
        block, rows = np.asarray(block, dtype=np.int64), np.asarray(rows, dtype=np.int64)
        return scoring.score_rows(block, rows, *self._inputs(now))

    def _inputs(self, now: datetime) -> tuple[scoring.Cities, scoring.Links, scoring.Model]:
        return self._cities, self._links, self._model._replace(now=now.timestamp())
