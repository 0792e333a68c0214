"""Clusters answered at once: the last ones found, marked stale after a change, while one build finds newer ones on a
thread; the build reads a frozen copy of the index, which changes made meanwhile leave alone."""

import asyncio
import dataclasses
import threading
from datetime import UTC, datetime
from functools import partial

import numpy as np
import pytest

from citypair_matching import service
from citypair_matching.cluster_cache import ClusterCache, Found, FrozenIndex
from citypair_matching.clusters import find_clusters
from citypair_matching.core import MatchIndex
from tests.unit.test_matching_rounds import world as cities_world

NOW = datetime(2026, 11, 27, tzinfo=UTC)
KEY = (None, 5, 10)


class Builds:
    """What the cache calls to start a build (a `Snapshot`), counting the builds started; each runs on the thread the
    cache gives it until `release` is set."""

    def __init__(self, state: int):
        self.state, self.started, self.threads = state, 0, []
        self.running, self.release = threading.Event(), threading.Event()

    def __call__(self):
        self.started += 1
        return partial(self._work, self.state)

    def _work(self, state: int) -> Found:
        self.threads.append(threading.get_ident())
        self.running.set()
        assert self.release.wait(5), "never released: the event loop was held while the build ran"
        return Found([], state, datetime.now(UTC))


async def release_once_running(builds: Builds) -> None:
    """Let the build finish once it runs: from the event loop, so only if the build leaves the loop free."""
    assert await asyncio.to_thread(builds.running.wait, 5)
    builds.release.set()


async def test_after_a_change_a_burst_gets_the_last_clusters_at_once_marked_stale_and_starts_one_build():
    cache, builds = ClusterCache(), Builds(state=1)
    builds.release.set()
    first, stale = await cache.get(KEY, 1, builds)
    assert not stale and builds.started == 1
    builds.state = 2
    builds.running.clear(), builds.release.clear()  # the next build runs until the burst has been answered
    answers = await asyncio.gather(*(cache.get(KEY, 2, builds) for _ in range(20)))
    assert answers == [(first, True)] * 20
    under_way = cache.refresh(KEY, builds)  # the burst's build: no other is started
    await release_once_running(builds)
    newer = await under_way
    assert builds.started == 2 and newer.state == 2
    assert await cache.get(KEY, 2, builds) == (newer, False)
    assert builds.started == 2


async def test_a_query_never_answered_waits_for_its_one_build_which_leaves_the_loop_free():
    cache, builds = ClusterCache(), Builds(state=1)
    *answers, _ = await asyncio.gather(*(cache.get(KEY, 1, builds) for _ in range(3)), release_once_running(builds))
    (found, stale), *others = answers
    assert found.state == 1 and not stale and all(other == (found, False) for other in others)
    assert builds.started == 1
    assert builds.threads and threading.get_ident() not in builds.threads  # built on another thread


async def test_a_failed_build_fails_those_waiting_and_the_next_request_builds_again():
    def broken():
        def work():
            raise RuntimeError("kernel failed")

        return work

    cache = ClusterCache()
    with pytest.raises(RuntimeError, match="kernel failed"):
        await cache.get(KEY, 1, broken)
    builds = Builds(state=1)
    builds.release.set()
    found, stale = await cache.get(KEY, 1, builds)
    assert found.state == 1 and not stale and builds.started == 1


def world(n: int, seed: int) -> MatchIndex:
    """The rounds' test world, with a partnership in every four cities (the graph's arrays have something in them)."""
    index = cities_world(n, seed)
    for i in range(0, n - 1, 4):
        index.add_partnership(f"c{i}", f"c{i + 1}")
    return index


def test_clusters_found_in_a_frozen_index_are_those_found_in_the_index():
    index = world(150, 3)
    expected = find_clusters(index, index.positions(), size=5, limit=8, now=NOW)
    assert expected
    assert find_clusters(FrozenIndex(index), index.positions(), size=5, limit=8, now=NOW) == expected


def test_a_frozen_index_keeps_the_scores_of_when_it_was_taken_while_the_index_changes_in_place():
    index = world(150, 4)
    everyone = index.positions()
    before = index.allowed_scores(everyone, everyone, now=NOW)
    frozen = FrozenIndex(index)
    # What event handlers do while a build runs, written in place into arrays the kernel reads: theme columns and
    # their transposed copies, countries (partners per country, country-pair counts, two-hop sums), degrees.
    for pos in range(0, 150, 3):
        row = index.row_at(pos)
        mirrored = {t: {"offer": v["need"], "need": v["offer"]} for t, v in row.themes.items()}
        index.upsert(dataclasses.replace(row, version=2, themes=mirrored, country_code="MN"))
    for pos in range(1, 150, 6):
        index.add_partnership(f"c{pos}", f"c{pos + 2}")
    retired = index.row_at(2)
    index.upsert(dataclasses.replace(retired, version=2, status="retired"))
    assert not np.array_equal(index.allowed_scores(everyone, everyone, now=NOW), before)
    np.testing.assert_array_equal(frozen.allowed_scores(everyone, everyone, now=NOW), before)
    assert frozen.row_at(2) == retired and frozen.row_at(0).version == 1


async def test_after_a_change_the_service_answers_the_last_clusters_stale_then_those_of_the_change():
    index, cache = world(60, 7), ClusterCache()
    query = {"theme": None, "size": 4, "limit": 5}
    first, stale = await service.find_clusters(cache=cache, index=index, **query)
    assert first.clusters and not stale
    assert await service.find_clusters(cache=cache, index=index, **query) == (first, False)  # kept while unchanged
    member = index.row_at(first.clusters[0].members[0])
    index.upsert(dataclasses.replace(member, version=2, status="retired"))
    assert await service.find_clusters(cache=cache, index=index, **query) == (first, True)
    fresh = await service.refresh_clusters(cache=cache, index=index, **query)  # the build that answer started
    assert await service.find_clusters(cache=cache, index=index, **query) == (fresh, False)
    assert fresh.computed_at > first.computed_at
    assert member.id not in {index.row_at(p).id for cluster in fresh.clusters for p in cluster.members}
