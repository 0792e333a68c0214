"""Programme rounds: pair many cities at once, maximising the total two-sided score. Pure.

Candidate edges are each city's top partners within the round (every constraint passed, score
at least the minimum). On them, a greedy pass (strongest pair first) and local improvement
(re-pairing around each chosen pair while the total grows) give a pairing with at most
`capacity` new partners per city. `exact_pairing` (networkx max_weight_matching) is the
reference on small inputs with capacity 1; the round uses it when the candidate graph is small.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import networkx as nx
import numpy as np

from citypair_matching.core import MatchIndex

CANDIDATES_PER_CITY = 10
EXACT_EDGE_LIMIT = 400  # max_weight_matching is cubic: exact only on small candidate graphs
Edge = tuple[int, int]


@dataclass
class RoundResult:
    pairs: list[tuple[int, int, float]]
    total: float
    unmatched: dict[int, str]
    method: str
    candidate_edges: int = 0
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
    return {(min(u, v), max(u, v)) for u, v in nx.max_weight_matching(graph)}


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
        if not changed:
            break
    return chosen


def improve_by_exact_neighbourhoods(
    edges: dict[Edge, float], chosen: set[Edge], *, ball: int = 150, passes: int = 4, time_budget: float = 6.0
) -> set[Edge]:
    """Capacity 1: re-solve exactly (max_weight_matching) small neighbourhoods of the candidate graph, keeping
    the pairing outside each, and take the better answer (large-neighbourhood search). Never lowers the total."""
    import time
    from collections import deque

    deadline = time.monotonic() + time_budget
    adjacency: dict[int, list[int]] = defaultdict(list)
    for u, v in edges:
        adjacency[u].append(v)
        adjacency[v].append(u)
    mate: dict[int, int] = {}
    for u, v in chosen:
        mate[u], mate[v] = v, u
    vertices = sorted(adjacency)
    for _ in range(passes):
        improved = False
        covered: set[int] = set()
        for seed in vertices:
            if seed in covered:
                continue
            if time.monotonic() > deadline:
                return {(min(u, v), max(u, v)) for u, v in mate.items()}
            inside, queue = {seed}, deque([seed])
            while queue and len(inside) < ball:
                for y in adjacency[queue.popleft()]:
                    if y not in inside and len(inside) < ball:
                        inside.add(y)
                        queue.append(y)
                        if y in mate and mate[y] not in inside and len(inside) < ball:
                            inside.add(mate[y])
                            queue.append(mate[y])
            covered |= inside
            free = {x for x in inside if x not in mate or mate[x] in inside}
            sub = nx.Graph()
            sub.add_weighted_edges_from(
                (u, v, edges[(min(u, v), max(u, v))]) for u in free for v in adjacency[u] if v in free and u < v
            )
            before = sum(edges[(min(x, mate[x]), max(x, mate[x]))] for x in free if x in mate) / 2
            found = nx.max_weight_matching(sub)
            after = sum(sub[u][v]["weight"] for u, v in found)
            if after > before + 1e-9:
                for x in free:
                    mate.pop(x, None)
                for u, v in found:
                    mate[u], mate[v] = v, u
                improved = True
        if not improved:
            break
    return {(min(u, v), max(u, v)) for u, v in mate.items()}


def pair_round(
    index: MatchIndex, positions: np.ndarray, *, capacity: int, min_score: float, now: datetime
) -> RoundResult:
    """Pair the cities at `positions`: at most `capacity` new partners each, all constraints passed."""
    positions = np.asarray(positions, dtype=np.int64)
    edges = candidate_edges(index, positions, min_score=min_score, now=now)
    cols = index._cols
    room = {int(p): int(min(capacity, max(0, cols["capacity"][p] - cols["degree"][p]))) for p in positions}
    if capacity == 1 and len(edges) <= EXACT_EDGE_LIMIT:
        chosen, method = exact_pairing(edges), "exact (networkx max_weight_matching)"
        chosen = {e for e in chosen if room[e[0]] and room[e[1]]}
    else:
        chosen, method = greedy_pairing(edges, room), "greedy + local improvement"
        if capacity == 1:
            chosen = improve_by_exact_neighbourhoods(edges, chosen)
            method += " + exact neighbourhoods"
    pairs = sorted(((u, v, edges[(u, v)]) for u, v in chosen), key=lambda p: -p[2])
    matched = {p for u, v, _ in pairs for p in (u, v)}
    has_edge = {p for e in edges for p in e}
    unmatched = {}
    for p in positions:
        p = int(p)
        if p in matched:
            continue
        if room[p] == 0:
            unmatched[p] = "at capacity"
        elif p not in has_edge:
            unmatched[p] = f"no allowed partner in the round with score ≥ {min_score}"
        else:
            unmatched[p] = "its candidates were paired with others for a higher total"
    return RoundResult(
        pairs=pairs,
        total=round(sum(w for _, _, w in pairs), 6),
        unmatched=unmatched,
        method=method,
        candidate_edges=len(edges),
        capacity_of=room,
    )
