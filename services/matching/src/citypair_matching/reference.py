"""The numpy reference: every factor's value and every constraint for blocks of pairs, whole arrays at a time.

The explanation reads its parts from here (`explain.py`), and the compiled kernel (`scoring._scan`) is checked
against it (tests/unit/test_matching_kernel.py): both take their formulas from `scoring`, so they compute the same
values. Slower than the kernel, and plain: a pair's score here is `score(weights, factor_values(...))`, the sum of
its named parts in the order of the factors.
"""

from datetime import datetime

import numpy as np

from citypair_matching import scoring
from citypair_matching.graph import DECLINE_EXCLUSION, PartnershipGraph
from citypair_matching.realism import RealismInputs, RealismModel, feature_arrays
from citypair_matching.rows import Rules, Table, Weights


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenation of arange(start, start + length) for each pair."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return offsets + np.arange(total)


def network_block(
    links: PartnershipGraph, a: np.ndarray, column: np.ndarray | None, shape
) -> tuple[np.ndarray, np.ndarray]:
    """Adamic-Adar and common-partner counts of each city of `a` with each column (two-hop walk over
    the graph, all rows at once). `column` maps a position to its column (-1: not a column), None = identity."""
    aa = np.zeros(shape, dtype=np.float32)
    common = np.zeros(shape, dtype=np.float32)
    indptr, neighbours, inverse_log = links.csr()
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


def three_hop_block(links: PartnershipGraph, a: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Walks of length 3 from each city of `a` to each of `rows` (their partners' partners partner): the
    two-step walks from each of `a` to every city, summed over each of `rows`' partners."""
    indptr, neighbours, _ = links.csr()
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


def near_block(links: PartnershipGraph, a: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """For each city of `a` and each of `rows`: partnerships between one and the other's near cities (either way),
    and between their near cities (see `scoring.REALISM_FEATURES`)."""
    nearby, nearby_t = links.near()
    partners = links.adjacency()
    from_near = nearby[a] @ partners  # partnerships of a's near cities, to every city
    to_a = (partners[a] @ nearby_t).toarray()  # a's partners, seen from every city that has them as near ones
    ties = (from_near @ nearby_t).toarray()
    return {"near_partners": from_near.toarray()[:, rows] + to_a[:, rows], "near_ties": ties[:, rows]}


def factor_values(
    table: Table, links: PartnershipGraph, realism: RealismModel, block: np.ndarray, rows: np.ndarray | slice
) -> dict:
    """Each factor's value in [0, 1] for every pair (block[i], rows[j]): arrays of shape (len(block), m)."""
    c = table.cols
    n = len(table)
    a, rows = np.asarray(block), np.asarray(rows)
    # All cities in order: slices are views, fancy indexing would copy every column.
    everyone = len(rows) == n and n > 0 and rows[0] == 0 and rows[-1] == n - 1
    sel = slice(0, n) if everyone else rows
    offer, need, need_total = c["offer"], c["need"], c["need_total"]
    if everyone:
        t = table.columns_t()
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
    pair_count = links.pair_counts[country_a][:, country_b]
    if everyone:
        column = None
    else:
        column = np.full(n, -1, dtype=np.int64)
        column[rows] = np.arange(len(rows))
    aa, common = network_block(links, a, column, met_to_a.shape)
    degree_a, degree_b = c["degree"][a][:, None], c["degree"][rows][None, :]
    country_degree, total_degree, top_logpop = links.country_terms()
    partners2_in, partners_degree = links.hops()
    inputs = RealismInputs(
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
            table.columns_t()["partners_in"][country_a, :n] if everyone else c["partners_in"][sel][:, country_a].T
        ),
        two_hop_a_in_country_b=partners2_in[country_b[None, :], a[:, None]],
        two_hop_b_in_country_a=partners2_in[country_a[:, None], rows[None, :]],
        two_hop_degree_a=partners_degree[a][:, None],
        two_hop_degree_b=partners_degree[rows][None, :],
        three_hop=three_hop_block(links, a, rows),
        **near_block(links, a, rows),
    )
    prior = realism.probability(feature_arrays(inputs))
    values = {
        "complementarity": scoring.complementarity(gain_a, gain_b),
        "shared_priorities": shared,
        "distance": scoring.distance_value(distance_km),
        "corridor": corridor.astype(np.float32),
        "language": language.astype(np.float32),
        "timezone": scoring.timezone_value(c["utc"][a][:, None], c["utc"][rows][None, :]),
        "country_affinity": scoring.affinity_value(pair_count),
        "network": scoring.network_value(aa),
        "realism": prior,
        "hub_damping": (scoring.hubness(degree_a) + scoring.hubness(degree_b)) / 2.0,
        # not factors: what the explanation shows besides
        "_gain_a": gain_a,
        "_gain_b": gain_b,
        "_distance_km": distance_km,
    }
    values = {name: np.broadcast_to(v, met_to_a.shape) for name, v in values.items()}
    values["_realism_inputs"] = inputs
    return values


def score(weights: Weights, values: dict[str, np.ndarray]) -> np.ndarray:
    """The sum of weight × value over the factors (the parts of an explanation add up to this)."""
    total = None
    for name, weight in weights.factors().items():
        part = weight * values[name].astype(np.float64)
        total = part if total is None else total + part
    return total


def check_masks(
    table: Table,
    links: PartnershipGraph,
    rules: Rules,
    block: np.ndarray,
    rows: np.ndarray,
    values: dict,
    now: datetime,
) -> dict[str, np.ndarray]:
    """Each constraint (see CHECKS) as a boolean array over (block, rows): True = passed."""
    c = table.cols
    a = np.asarray(block)
    shape = (len(a), len(rows))
    ids = table.rows
    country_a, country_b = c["country"][a][:, None], c["country"][rows][None, :]
    not_partners = np.ones(shape, dtype=bool)
    not_declined = np.ones(shape, dtype=bool)
    excluded = np.zeros(shape, dtype=bool)
    identity = len(rows) == len(table.rows) and (len(rows) == 0 or (rows[0] == 0 and rows[-1] == len(rows) - 1))
    if identity:
        column = None
    else:
        column = np.full(len(table.rows), -1, dtype=np.int64)
        column[rows] = np.arange(len(rows))

    def col(city_id: str):
        pos = table.position.get(city_id)
        if pos is None:
            return None
        if column is None:
            return pos
        j = int(column[pos])
        return j if j >= 0 else None

    for i, pos in enumerate(a):
        city = ids[pos]
        for partner in links.graph.adj.get(city.id, ()):
            if (j := col(partner)) is not None:
                not_partners[i, j] = False
        for other, at in links.declined.get(city.id, {}).items():
            if now - at < DECLINE_EXCLUSION and (j := col(other)) is not None:
                not_declined[i, j] = False
        if city.excluded_countries:
            bad = [table.countries.index[x] for x in city.excluded_countries if x in table.countries.index]
            excluded[i] |= np.isin(c["country"][rows], bad)
    for p in table.excluders:
        j = col(table.rows[p].id)
        if j is None:
            continue
        codes = set(table.rows[p].excluded_countries)
        for i, pos in enumerate(a):
            if ids[pos].country_code in codes:
                excluded[i, j] = True
    capacity_ok = c["degree"] < c["capacity"]
    same_ok = np.ones(shape, dtype=bool) if rules.allow_same_country else np.asarray(country_a != country_b)
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
