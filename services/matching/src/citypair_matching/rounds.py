"""Programme rounds: pair many cities at once, maximising the total two-sided score. Pure.

Candidate edges are each city's top partners within the round (every constraint passed, score at least
the minimum). On them, the pairing is a linear programme: maximise the total with at most `capacity` new
partners per city (HiGHS, through scipy; for capacity one, the same programme as a matching of the
bipartite double cover, much faster). Its optimum is an upper bound on any pairing, and it is integral
but for a few odd cycles; those edges, and the cities they leave free, are re-paired exactly (networkx
max_weight_matching on the small rest) or, above capacity 1, strongest pair first. So every round states
how close it is to the best possible on its candidates (`upper_bound`). `greedy_pairing` is the fallback.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import networkx as nx
import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csc_array, csr_array
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from citypair_matching.core import MatchIndex
from citypair_shared.vocabulary import UnmatchedReason

CANDIDATES_PER_CITY = 10
# The linear programme's time grows faster than its size: in rounds of more cities, fewer candidates each
# (6 per city over 25,000 cities: 1–2 s of solver time and within 0.3 % of the bound).
LARGE_ROUND, CANDIDATES_IN_LARGE_ROUND = 10_000, 6
EXACT_EDGE_LIMIT = 400  # max_weight_matching is cubic: on its own only for small candidate graphs
WIDEN_EDGE_LIMIT = 1500  # ...and on the rest of a linear programme's pairing up to this size
MIN_PASS_GAIN = 1e-5  # stop improving when a whole pass adds less than this share of the total
Edge = tuple[int, int]


@dataclass
class RoundResult:
    pairs: list[tuple[int, int, float]]
    total: float
    unmatched: dict[int, UnmatchedReason]
    method: str
    candidate_edges: int = 0
    upper_bound: float = 0.0  # no pairing of the candidate edges has a higher total
    capacity_of: dict[int, int] = field(default_factory=dict)


def candidate_edges(
    index: MatchIndex, positions: np.ndarray, *, k: int = CANDIDATES_PER_CITY, min_score: float, now: datetime
) -> dict[Edge, float]:
    edges: dict[Edge, float] = {}
    for pos, top in index.ranked_all(positions, k, min_score=min_score, now=now).items():
        for other, score in top:
            edges[(min(pos, other), max(pos, other))] = score
    return edges


def exact_pairing(edges: dict[Edge, float]) -> set[Edge]:
    """The maximum-weight matching (capacity 1), by networkx."""
    graph = nx.Graph()
    graph.add_weighted_edges_from((u, v, w) for (u, v), w in edges.items())
    # one component at a time: the algorithm is cubic in the size of what it is given
    return {
        (min(u, v), max(u, v))
        for part in nx.connected_components(graph)
        for u, v in nx.max_weight_matching(graph.subgraph(part))
    }


def greedy_pairing(edges: dict[Edge, float], capacity: dict[int, int], *, passes: int = 20) -> set[Edge]:
    """Strongest pairs first, then local improvement: add free pairs, swap a pair for two better ones,
    and trade a city's weakest pair for a stronger one with a free city."""
    adjacency: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for (u, v), w in edges.items():
        adjacency[u].append((w, v))
        adjacency[v].append((w, u))
    for items in adjacency.values():
        items.sort(reverse=True)
    chosen: set[Edge] = set()
    load: dict[int, int] = defaultdict(int)
    partners: dict[int, set[int]] = defaultdict(set)

    def free(x: int) -> bool:
        return load[x] < capacity.get(x, 0)

    def add(u: int, v: int) -> None:
        chosen.add((min(u, v), max(u, v)))
        load[u] += 1
        load[v] += 1
        partners[u].add(v)
        partners[v].add(u)

    def remove(u: int, v: int) -> None:
        chosen.discard((min(u, v), max(u, v)))
        load[u] -= 1
        load[v] -= 1
        partners[u].discard(v)
        partners[v].discard(u)

    def best_free(x: int, avoid: set[int]) -> tuple[float, int] | None:
        for w, y in adjacency[x]:
            if y not in avoid and y not in partners[x] and free(y):
                return w, y
        return None

    def weight(a: int, b: int) -> float | None:
        return edges.get((min(a, b), max(a, b)))

    def improve_by_exchange(u: int, x: int, w: float) -> bool:
        """Take (u, x): for partners v of u and y of x, swap (u, v), (x, y) for (u, x), (v, y);
        or, if u is free, drop (x, y) for (u, x) and give y its best free partner."""
        for v in list(partners[u]):
            for y in list(partners[x]):
                if v == y or y in partners[v]:
                    continue
                vy = weight(v, y)
                if vy is not None and w + vy > weight(u, v) + weight(x, y) + 1e-12:
                    remove(u, v)
                    remove(x, y)
                    add(u, x)
                    add(v, y)
                    return True
        for a, b in ((u, x), (x, u)):
            if free(a) and not free(b):
                for y in list(partners[b]):
                    remove(b, y)
                    z = best_free(y, {b, a})
                    if w + (z[0] if z else 0.0) > weight(b, y) + 1e-12:
                        add(a, b)
                        if z:
                            add(y, z[1])
                        return True
                    add(b, y)
        return False

    ordered = sorted(edges.items(), key=lambda item: (-item[1], item[0]))
    total = 0.0
    for _ in range(passes):
        changed = False
        for (u, v), _w in ordered:
            if (u, v) not in chosen and free(u) and free(v):
                add(u, v)
                changed = True
        for (u, v), w in sorted(((e, edges[e]) for e in chosen), key=lambda item: item[1]):
            if (u, v) not in chosen:
                continue
            remove(u, v)
            x = best_free(u, {v})
            y = best_free(v, {u} | ({x[1]} if x else set()))
            gain = (x[0] if x else 0.0) + (y[0] if y else 0.0) - w
            if gain > 1e-12 and x and y:
                add(u, x[1])
                add(v, y[1])
                changed = True
            else:
                add(u, v)
        for (u, x), w in ordered:
            if (u, x) in chosen:
                continue
            if improve_by_exchange(u, x, w):
                changed = True
                continue
            for a, b in ((u, x), (x, u)):
                if free(b) and not free(a) and partners[a]:
                    weakest = min(partners[a], key=lambda p: edges[(min(a, p), max(a, p))])
                    if w > edges[(min(a, weakest), max(a, weakest))] + 1e-12:
                        remove(a, weakest)
                        add(a, b)
                        changed = True
                        break
        before, total = total, sum(edges[e] for e in chosen)
        if not changed or total - before < MIN_PASS_GAIN * total:
            break
    return chosen


def lp_pairing(edges: dict[Edge, float], capacity: dict[int, int]) -> tuple[set[Edge], float] | None:
    """The pairing from the linear programme and its optimum (an upper bound on any pairing); None if the
    solver fails."""
    keys = list(edges)
    if not keys:
        return set(), 0.0
    weights = np.array([edges[e] for e in keys])
    cities, ends = np.unique(np.array(keys), return_inverse=True)
    ends = ends.reshape(-1, 2)
    room = np.array([capacity.get(int(c), 0) for c in cities], dtype=float)
    if room.max() <= 1:
        x, optimum = double_cover_pairing(ends, weights, room)
    else:
        columns = np.tile(np.arange(len(keys)), 2)
        incidence = csc_array((np.ones(2 * len(keys)), (ends.T.reshape(-1), columns)), shape=(len(cities), len(keys)))
        solved = linprog(-weights, A_ub=incidence, b_ub=room, bounds=(0, 1), method="highs")
        if solved.status != 0:
            return None
        x, optimum = solved.x, -solved.fun
    whole = x > 1 - 1e-6
    chosen = {keys[i] for i in np.flatnonzero(whole)}
    # Around the fractional part (odd cycles), whole edges may not be the best either: re-pair both together
    # when that rest stays small.
    unsure = {int(c) for i in np.flatnonzero((x > 1e-6) & ~whole) for c in keys[i]}
    near = {c for e in edges if unsure.intersection(e) for c in e}
    widened = {e for e in chosen if near.intersection(e)}
    if sum(1 for e in edges if near.issuperset(e)) <= WIDEN_EDGE_LIMIT:
        chosen -= widened
    load = defaultdict(int)
    for u, v in chosen:
        load[u] += 1
        load[v] += 1
    left = {c: capacity.get(c, 0) - load[c] for c in map(int, cities)}
    rest = {(u, v): w for (u, v), w in edges.items() if (u, v) not in chosen and left[u] > 0 and left[v] > 0}
    if rest and max(left.values()) <= 1:
        chosen |= exact_pairing(rest)
    else:
        chosen |= greedy_pairing(rest, left, passes=1)
    return chosen, float(optimum)


def double_cover_pairing(ends: np.ndarray, weights: np.ndarray, room: np.ndarray) -> tuple[np.ndarray, float]:
    """The linear programme of capacity one, solved as the best matching of the graph's bipartite double cover
    (scipy's sparse LAPJV): each city is a left and a right vertex, an edge u–v joins u to v' and v to u', and
    u to u' (weight 0) leaves u free. Half that matching is an optimal solution, each edge at 0, ½ or 1."""
    keep = (room[ends[:, 0]] > 0) & (room[ends[:, 1]] > 0)
    n, (u, v), w = len(room), ends[keep].T, weights[keep]
    top = (w.max() if len(w) else 0.0) + 1.0  # costs to minimise, all positive: each left vertex takes one
    rows, cols = np.concatenate([u, v, np.arange(n)]), np.concatenate([v, u, np.arange(n)])
    cost = csr_array((np.concatenate([top - w, top - w, np.full(n, top)]), (rows, cols)), shape=(n, n))
    left, right = min_weight_full_bipartite_matching(cost)
    partner = np.empty(n, dtype=np.int64)
    partner[left] = right
    x = np.zeros(len(weights))
    x[keep] = ((partner[u] == v).astype(float) + (partner[v] == u)) / 2.0
    return x, float(x @ weights)


def pair_round(
    index: MatchIndex, positions: np.ndarray, *, capacity: int, min_score: float, now: datetime
) -> RoundResult:
    """Pair the cities at `positions`: at most `capacity` new partners each, all constraints passed."""
    positions = np.asarray(positions, dtype=np.int64)
    k = CANDIDATES_PER_CITY if len(positions) <= LARGE_ROUND else CANDIDATES_IN_LARGE_ROUND
    edges = candidate_edges(index, positions, k=k, min_score=min_score, now=now)
    cols = index.table.cols
    room = {int(p): int(min(capacity, max(0, cols["capacity"][p] - cols["degree"][p]))) for p in positions}
    if capacity == 1 and len(edges) <= EXACT_EDGE_LIMIT:
        chosen = {e for e in exact_pairing(edges) if room[e[0]] and room[e[1]]}
        bound, method = sum(edges[e] for e in chosen), "exact (networkx max_weight_matching)"
    elif (solved := lp_pairing(edges, room)) is not None:
        (chosen, bound), method = solved, "linear programme + exact rest"
    else:
        chosen, bound, method = greedy_pairing(edges, room), 0.0, "greedy + local improvement"
    pairs = sorted(((u, v, edges[(u, v)]) for u, v in chosen), key=lambda p: -p[2])
    matched = {p for u, v, _ in pairs for p in (u, v)}
    has_edge = {p for e in edges for p in e}
    unmatched = {}
    for p in positions:
        p = int(p)
        if p in matched:
            continue
        if room[p] == 0:
            unmatched[p] = UnmatchedReason.at_capacity
        elif p not in has_edge:
            unmatched[p] = UnmatchedReason.no_allowed_partner  # with a score of at least the round's minimum
        else:
            unmatched[p] = UnmatchedReason.paired_elsewhere  # its candidates paired with others for a higher total
    return RoundResult(
        pairs=pairs,
        total=round(sum(w for _, _, w in pairs), 6),
        unmatched=unmatched,
        method=method,
        candidate_edges=len(edges),
        upper_bound=round(bound, 6),
        capacity_of=room,
    )
