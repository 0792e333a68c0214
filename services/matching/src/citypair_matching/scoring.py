"""How a pair is scored, written once: the factor formulas and the compiled ranking kernel.

The formulas take numpy arrays (the reference and explanation path, `reference.factor_values`) or plain
numbers (compiled by numba into `rank_rows` / `score_rows`, which score a block of cities against
every candidate pair by pair, without temporaries). Both paths therefore compute the same values.
Everything numba compiles lives in this one file: numba's on-disk cache notices a change of the
compiled function's own file only.

The kernel applies every constraint of `explain.CHECKS` and, when ranking, an exact bound: the costly part
of a pair (distance, network, realism) is skipped when even its best case cannot enter the top k.
"""

import math
from enum import IntEnum
from typing import NamedTuple

import numba
import numpy as np

EARTH_RADIUS_KM = 6371.0088
DISTANCE_SCALE_KM = 2500.0  # distance value = exp(-d / scale)
WORKDAY_HOURS = 8.0
AFFINITY_SATURATION = 50  # country pairs with this many partnerships count fully
HUB_SATURATION = 50  # cities with this many partners count as full hubs

# ---------------------------------------------------------------------- formulas (arrays or numbers)


def gain(met, need_total):
    """The share of one side's needs the other meets (need totals are whole levels: ≥ 1 or 0 with met 0)."""
    return met / np.maximum(need_total, 1.0)


def complementarity(gain_a, gain_b):
    """The harmonic mean of both gains: 0 when either side gains nothing."""
    return 2.0 * gain_a * gain_b / np.maximum(gain_a + gain_b, 1e-30)


def shared_priorities(shared_met, need_total_a, need_total_b):
    return shared_met / np.maximum(np.sqrt(need_total_a * need_total_b), 1.0)


def distance_km(cosine):
    return EARTH_RADIUS_KM * np.arccos(np.minimum(np.maximum(cosine, -1.0), 1.0))


def distance_value(km):
    return np.exp(-km / DISTANCE_SCALE_KM)


def timezone_value(utc_a, utc_b):
    """Overlap of two 8-hour working days."""
    gap = np.abs(utc_a - utc_b)
    gap = np.minimum(gap, 24.0 - gap)
    return np.minimum(np.maximum((WORKDAY_HOURS - gap) / WORKDAY_HOURS, 0.0), 1.0)


def affinity_value(pair_count):
    return np.minimum(1.0, np.log1p(pair_count) / math.log1p(AFFINITY_SATURATION))


def network_value(adamic_adar):
    return adamic_adar / (1.0 + adamic_adar)


def hubness(degree):
    return np.minimum(1.0, np.log1p(degree) / math.log1p(HUB_SATURATION))


REALISM_FEATURES = (
    "log_distance",
    "log_distance_sq",
    "same_country",
    "log_population_sum",
    "log_population_gap",
    "country_pair_partnerships",
    "adamic_adar",
    "common_partners",
    "degree_sum",
    "degree_product",
    "partners_in_other_country",
    "country_pair_lift",
    "country_degree",
    "country_pair_seen",
    "has_partner_in_other_country",
    "no_partners",
    "two_hop_country_share",
    "three_hop_paths",
    "relative_population_gap",
    "near_partners",
    "near_ties",
)


def country_lift(pair_count, country_degree_a, country_degree_b, total_degree):
    """How much more the two countries' cities partner than their partnership totals predict."""
    return np.log1p(pair_count * total_degree / np.maximum(country_degree_a * country_degree_b, 1.0))


def two_hop_share(a_partners_in_b, a_partners_degree, b_partners_in_a, b_partners_degree):
    """Of the partnerships a's partners have, the share in b's country; and the reverse, added."""
    return a_partners_in_b / np.maximum(a_partners_degree, 1.0) + b_partners_in_a / np.maximum(b_partners_degree, 1.0)


def three_hop_ratio(walks, degree_a, degree_b):
    """Walks of length 3 from a to b (a's partners partner with b's partners), scaled by the degrees."""
    return walks / np.sqrt(np.maximum(degree_a * degree_b, 1.0))


def realism_features(
    distance_km,
    same_country,
    logpop_a,
    logpop_b,
    top_logpop_a,
    top_logpop_b,
    log_pair_count,
    log_lift,
    log_country_degree_a,
    log_country_degree_b,
    adamic_adar,
    log_common,
    log_degree_a,
    log_degree_b,
    log_a_in_b,
    log_b_in_a,
    two_hop,
    three_hop,
    log_near_partners,
    log_near_ties,
):
    """Each of `REALISM_FEATURES`, in order (all symmetric in a and b). Counts come as log(1 + count), which the
    kernel looks up: pair_count (partnerships between the two countries), each country's partnerships, common
    partners, degrees, and a_in_b / b_in_a (a's partners in b's country and the reverse). `top_logpop_*` is
    the log population of the largest city of each side's country; `log_lift` is `country_lift`, `two_hop`
    `two_hop_share` and `three_hop` `three_hop_ratio`. Near cities: each city's NEAR_CITIES nearest (graph.py);
    `near_partners` counts partnerships between one city and the other's near cities (both ways), `near_ties`
    those between the two cities' near cities: towns of one region that twin with towns of another."""
    log_d = np.log1p(distance_km) / 10.0
    return (
        log_d,
        log_d * log_d,
        same_country * 1.0,
        (logpop_a + logpop_b) / 2.0,
        np.abs(logpop_a - logpop_b),
        log_pair_count * 1.0,
        adamic_adar * 1.0,
        log_common * 1.0,
        log_degree_a + log_degree_b,
        log_degree_a * log_degree_b,
        log_a_in_b + log_b_in_a,
        log_lift * 1.0,
        log_country_degree_a + log_country_degree_b,
        (log_pair_count > 0.0) * 1.0,
        (log_a_in_b > 0.0) * 1.0 + (log_b_in_a > 0.0) * 1.0,
        (log_degree_a == 0.0) * 1.0 + (log_degree_b == 0.0) * 1.0,
        two_hop * 1.0,
        np.log1p(three_hop),
        # a capital pairs with a capital, a small town with a small town: each side's size against its country's
        np.abs((logpop_a - top_logpop_a) - (logpop_b - top_logpop_b)),
        log_near_partners * 1.0,
        log_near_ties * 1.0,
    )


def realism_value(logit):
    return 1.0 / (1.0 + np.exp(-np.minimum(np.maximum(logit, -30.0), 30.0)))


# Where each feature of `REALISM_FEATURES` sits: the kernel's bound regroups the logit by what it depends on.
(_F_LOGD, _F_LOGD2, _F_SAME, _F_POP, _F_GAP, _F_PAIRS, _F_AA, _F_COMMON, _F_DSUM, _F_DPROD, _F_IN, _F_LIFT, _F_CDEG,
 _F_SEEN, _F_HAS_IN, _F_NONE, _F_TWO_HOP, _F_THREE_HOP, _F_REL_GAP, _F_NEAR,
 _F_TIES) = range(len(REALISM_FEATURES))  # fmt: skip


def realism_city_terms(beta, logpop, log_degree):
    """The part of the realism logit that depends on one city alone (each side adds its own)."""
    return beta[_F_POP] * logpop / 2.0 + beta[_F_DSUM] * log_degree + beta[_F_NONE] * (log_degree == 0.0)


def realism_distance_bounds(beta) -> np.ndarray:
    """For each step of `distance_bounds`, the largest distance part of the realism logit (β·log d + β'·log² d)
    over that step and its neighbours (so a cosine rounded into the next step is covered too)."""
    u = np.log1p(distance_km(np.linspace(-1.0, 1.0, BOUND_STEPS + 1))) / 10.0  # falls as the cosine grows
    steps = np.arange(BOUND_STEPS)
    high, low = u[np.maximum(steps - 1, 0)], u[np.minimum(steps + 2, BOUND_STEPS)]
    b1, b2 = beta[_F_LOGD], beta[_F_LOGD2]
    vertex = np.clip(-b1 / (2.0 * b2) if b2 != 0 else low, low, high)
    return np.maximum.reduce([b1 * x + b2 * x * x for x in (low, high, vertex)]) + 1e-6


# ---------------------------------------------------------------------- the compiled kernel


class Cities(NamedTuple):
    """Per-position arrays the kernel reads (n = cities in the index)."""

    offer: np.ndarray  # (themes, ≥ n) uint8 levels 0–5 (the columns past n are unused)
    need: np.ndarray  # (themes, ≥ n)
    need_total: np.ndarray  # (n,) float32
    xyz: np.ndarray  # (3, ≥ n) float32 unit vectors
    utc: np.ndarray  # (n,) float32 hours
    logpop: np.ndarray  # (n,) float32
    country: np.ndarray  # (n,) int32
    corridors: np.ndarray  # (n,) int64 bit set
    languages: np.ndarray  # (n, words) uint64 bit set
    hub: np.ndarray  # (n,) float64 hubness
    degree: np.ndarray  # (n,) int32
    open: np.ndarray  # (n,) bool: published, eligible, below capacity
    excluded: np.ndarray  # (n, 4) uint64 bit set of excluded country indices
    has_excluded: np.ndarray  # (n,) bool
    partners_in: np.ndarray  # (countries, ≥ n) int16: partners each city has in each country
    partners2_in: np.ndarray  # (countries, ≥ n) int32: the same summed over each city's partners
    partners_degree: np.ndarray  # (n,) float64: the degrees of each city's partners, summed
    realism_city: np.ndarray  # (n,) float64: realism_city_terms
    relative_logpop: np.ndarray  # (n,) float64: log population − that of the country's largest city


class Links(NamedTuple):
    """The partnership graph and the live declines over positions, as CSR arrays."""

    indptr: np.ndarray
    neighbours: np.ndarray
    inverse_log: np.ndarray  # 1 / log degree (0 below degree 2): Adamic-Adar weights
    near_indptr: np.ndarray  # each city's near cities (see graph.NEAR_CITIES)
    near: np.ndarray
    nearer_indptr: np.ndarray  # the reverse: the cities that have each city among their near ones
    nearer: np.ndarray
    declined_indptr: np.ndarray
    declined: np.ndarray
    declined_at: np.ndarray  # float64 POSIX seconds


class Model(NamedTuple):
    weights: np.ndarray  # float64, in the order of `FACTORS`
    realism_beta: np.ndarray  # float64 per realism feature: coef / std
    realism_offset: float  # intercept − Σ beta × mean
    countries: int  # countries in use: every city's country index is below
    pair_counts: np.ndarray  # (countries, countries) int32
    affinity: np.ndarray  # (countries, countries) float64: affinity_value(pair_counts)
    lift: np.ndarray  # (countries, countries) float64: country_lift
    log_country_degree: np.ndarray  # (countries,) float64: log(1 + partnerships of the country's cities)
    top_logpop: np.ndarray  # (countries,) float64: log population of each country's largest city
    allow_same_country: bool
    now: float  # POSIX seconds: declines younger than `decline_seconds` exclude their pair
    decline_seconds: float
    distance_bound: np.ndarray  # see `distance_bounds`
    log1p: np.ndarray  # log(1 + i) for whole counts i: the kernel's realism inputs
    realism_distance_bound: np.ndarray  # see `realism_distance_bounds`


LOG1P = np.log1p(np.arange(1 << 16, dtype=np.float64))


BOUND_STEPS = 1024


def distance_bounds() -> np.ndarray:
    """distance_value at cosines -1, ..., 1 in BOUND_STEPS steps: as it grows with the cosine, entry i + 1
    bounds it from above for every cosine in step i (the kernel's cheap test before the arc cosine)."""
    return distance_value(distance_km(np.linspace(-1.0, 1.0, BOUND_STEPS + 1)))


DISTANCE_BOUND = distance_bounds()


# The factors, in the order of the weights: the one list of their names. A score is Σ weight × value, each value in
# [0, 1]; every factor is symmetric in A and B. The weights (data/weights.json) are read in this order (`rows.Weights`),
# the kernel indexes them by `Factor`, and the explanation names each part by it. A new factor: its name here, its
# weight in weights.json, its value in `reference.factor_values` and in `_scan` below (and in tests/bench/naive.py).
FACTORS = (
    "complementarity",  # what A offers against what B needs and the reverse, harmonic mean (RECON 2010): both gain
    "shared_priorities",  # both need the same themes
    "distance",  # great-circle, decaying (`distance_value`)
    "corridor",  # a shared Belt and Road corridor
    "language",  # a shared language
    "timezone",  # overlap of 8-hour working days
    "country_affinity",  # how often cities of these two countries already partner
    "network",  # Adamic-Adar over the partnership graph
    "realism",  # the realism prior (`realism.py`), fitted on real twin-city pairs
    "hub_damping",  # the mean hub-ness of the two (weight ≤ 0): 0 since 2026.4, the prior weighs degrees as fitted
)
# The kernel's index of each weight; numba reads IntEnum members as constants. Defined in this file so that numba's
# cache (which watches this file only) notices a change of the order.
Factor = IntEnum("Factor", FACTORS, start=0)

# error_model="numpy": no zero-division checks (every divisor here is kept ≥ 1 or > 0), so loops vectorise
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
_inline = numba.njit(inline="always", cache=True, nogil=True, error_model="numpy")
_gain, _complementarity, _shared = _inline(gain), _inline(complementarity), _inline(shared_priorities)
_distance_km, _distance_value, _timezone = _inline(distance_km), _inline(distance_value), _inline(timezone_value)
_network, _realism_features = _inline(network_value), _inline(realism_features)
_two_hop_share, _three_hop_ratio = _inline(two_hop_share), _inline(three_hop_ratio)
_realism_value = _inline(realism_value)


@_inline
def _log1p_count(table, count):
    return table[count] if count < len(table) else np.log1p(np.float64(count))


@_inline
def _row_sums(a, cities, column, met_a, met_b, shared):
    """For city a and every candidate j: Σ_t min(need_a, offer_j), Σ_t min(offer_a, need_j), Σ_t min(need_a, need_j)."""
    met_a[:] = 0
    met_b[:] = 0
    shared[:] = 0
    for t in range(column.offer.shape[0]):
        need_a, offer_a = cities.need[t, a], cities.offer[t, a]
        offer_t, need_t = column.offer[t], column.need[t]  # may be wider than the candidates
        if need_a > 0:
            for j in range(len(met_a)):
                met_a[j] += min(need_a, offer_t[j])
                shared[j] += min(need_a, need_t[j])
        if offer_a > 0:
            for j in range(len(met_b)):
                met_b[j] += min(offer_a, need_t[j])


@_inline
def _mark_row(a, links, model, column_of, adamic_adar, common, three_hop, blocked, touched, walked):
    """Over the candidates' columns: Adamic-Adar and common partners of a with each (two-hop walks), walks of
    length 3 from a to each, and a's partners and live declines as blocked. Returns how many entries of
    `touched` (columns) and of `walked` (the positions two-hop walks end at) to reset afterwards."""
    count, steps = 0, 0
    for e in range(links.indptr[a], links.indptr[a + 1]):
        z = links.neighbours[e]
        if column_of[z] >= 0:
            blocked[column_of[z]] = True
            touched[count] = column_of[z]
            count += 1
        weight = links.inverse_log[z]
        if weight > 0:  # a partner of degree 1 leads back to a only
            for f in range(links.indptr[z], links.indptr[z + 1]):
                walked[steps] = links.neighbours[f]
                steps += 1
                y = column_of[links.neighbours[f]]
                if y >= 0:
                    adamic_adar[y] += weight
                    common[y] += 1.0
                    touched[count] = y
                    count += 1
    for s in range(steps):  # one step further: walks of length 3 (those back through a reach its partners only)
        y = walked[s]
        for f in range(links.indptr[y], links.indptr[y + 1]):
            x = column_of[links.neighbours[f]]
            if x >= 0:
                three_hop[x] += 1.0
    for e in range(links.declined_indptr[a], links.declined_indptr[a + 1]):
        y = column_of[links.declined[e]]
        if y >= 0 and model.now - links.declined_at[e] < model.decline_seconds:
            blocked[y] = True
            touched[count] = y
            count += 1
    return count, steps


@_inline
def _unmark(links, column_of, count, steps, adamic_adar, common, three_hop, blocked, touched, walked):
    for i in range(count):
        y = touched[i]
        adamic_adar[y] = 0.0
        common[y] = 0.0
        blocked[y] = False
    for s in range(steps):
        y = walked[s]
        for f in range(links.indptr[y], links.indptr[y + 1]):
            x = column_of[links.neighbours[f]]
            if x >= 0:
                three_hop[x] = 0.0


@_inline
def _walk_near(a, links, column_of, near_partners, near_ties, step):
    """Adds `step` (1 to mark, -1 to undo) for each partnership between a and a candidate's near cities or between a
    near city of a and a candidate (near_partners), and between near cities of both (near_ties)."""
    for e in range(links.near_indptr[a], links.near_indptr[a + 1]):
        x = links.near[e]
        for f in range(links.indptr[x], links.indptr[x + 1]):
            y = links.neighbours[f]
            if column_of[y] >= 0:
                near_partners[column_of[y]] += step
            for g in range(links.nearer_indptr[y], links.nearer_indptr[y + 1]):
                b = column_of[links.nearer[g]]
                if b >= 0:
                    near_ties[b] += step
    for e in range(links.indptr[a], links.indptr[a + 1]):
        y = links.neighbours[e]
        for g in range(links.nearer_indptr[y], links.nearer_indptr[y + 1]):
            b = column_of[links.nearer[g]]
            if b >= 0:
                near_partners[b] += step


@_inline
def _realism_row(a, cities, model, out):
    """For city a, into out[c]: the part of the realism logit set by a and a partner's country c alone (the
    country pair, and a's own partners and their partners in c), plus the intercept and a's own terms."""
    beta, log1p, ca = model.realism_beta, model.log1p, cities.country[a]
    base = model.realism_offset + cities.realism_city[a] + beta[_F_CDEG] * model.log_country_degree[ca]
    spread = 1.0 / max(cities.partners_degree[a], 1.0)
    for c in range(len(out)):
        pairs, mine = model.pair_counts[ca, c], cities.partners_in[c, a]
        out[c] = (
            base
            + beta[_F_SAME] * (c == ca)
            + beta[_F_PAIRS] * _log1p_count(log1p, pairs)
            + beta[_F_LIFT] * model.lift[ca, c]
            + beta[_F_CDEG] * model.log_country_degree[c]
            + beta[_F_SEEN] * (pairs > 0)
            + beta[_F_IN] * _log1p_count(log1p, mine)
            + beta[_F_HAS_IN] * (mine > 0)
            + beta[_F_TWO_HOP] * cities.partners2_in[c, a] * spread
        )


@_inline
def _excludes(cities, a, country):
    return cities.has_excluded[a] and (cities.excluded[a, country >> 6] >> np.uint64(country & 63)) & np.uint64(1)


@_jit
def _scan(rows, cand, cities, column, column_of, links, model, k, min_score, out_position, out_score, out_matrix):
    """Score each row against every candidate (`column`: the candidates' rows of `cities`; `column_of`: a
    position's column, -1 for none). With k > 0, keep each row's top k with score ≥ min_score in out_position /
    out_score (best first, ties by position; unused slots: position -1); with k == 0, write every score to
    out_matrix (-inf where a constraint fails).

    Two passes per row: the cheap factors of every candidate in a loop without branches (vectorised), then the
    distance and realism only where the best case could still enter the top k (an exact bound)."""
    m = len(cand)
    # bytes: sums of whole levels ≤ 5 × themes (see rows.py) are exact, and a row's sums move a quarter of the memory
    met_a, met_b, shared = np.empty(m, np.uint8), np.empty(m, np.uint8), np.empty(m, np.uint8)
    partial, cosines = np.empty(m), np.empty(m)
    language, affinity, visit = np.empty(m, dtype=np.bool_), np.empty(m), np.empty(m, dtype=np.int64)
    adamic_adar, common, three_hop = np.zeros(m), np.zeros(m), np.zeros(m)
    near_partners, near_ties = np.zeros(m), np.zeros(m)
    blocked = np.zeros(m, dtype=np.bool_)
    touched = np.empty(2 * len(links.neighbours) + len(links.declined) + 1, dtype=np.int64)
    walked = np.empty(len(links.neighbours) + 1, dtype=np.int64)
    top_score, top_position = np.empty(max(k, 1)), np.empty(max(k, 1), dtype=np.int64)
    w = model.weights
    rest_best = max(w[Factor.distance], 0.0) + max(w[Factor.realism], 0.0)  # distance and realism values are in [0, 1]
    country_row = np.empty(model.countries)
    beta = model.realism_beta
    for i in range(len(rows)):
        a = rows[i]
        if k:
            out_position[i, :] = -1
        else:
            out_matrix[i, :] = -np.inf
        if not cities.open[a]:
            continue
        _row_sums(a, cities, column, met_a, met_b, shared)
        count, steps = _mark_row(a, links, model, column_of, adamic_adar, common, three_hop, blocked, touched, walked)
        _walk_near(a, links, column_of, near_partners, near_ties, 1.0)
        ca, total_a, utc_a = cities.country[a], np.float64(cities.need_total[a]), np.float64(cities.utc[a])
        corridors_a, hub_a, affinity_a = cities.corridors[a], cities.hub[a], model.affinity[ca]
        words, allow_same_country = cities.languages.shape[1], model.allow_same_country
        # gathers and bit sets, apart: in the loop below they would keep it from vectorising; each in a loop of
        # its own, so that each vectorises (strided loads) and a's empty language words are skipped
        x0, x1, x2 = np.float64(cities.xyz[0, a]), np.float64(cities.xyz[1, a]), np.float64(cities.xyz[2, a])
        y0, y1, y2 = column.xyz[0], column.xyz[1], column.xyz[2]
        for j in range(m):
            cosines[j] = x0 * np.float64(y0[j]) + x1 * np.float64(y1[j]) + x2 * np.float64(y2[j])
        for j in range(m):
            affinity[j] = affinity_a[column.country[j]]
        language[:] = False
        for word in range(words):
            mine = cities.languages[a, word]
            if mine:
                for j in range(m):
                    language[j] |= (mine & column.languages[j, word]) != 0
        for j in range(m):  # pass 1: the cheap factors; -inf where a constraint fails (but exclusions)
            total_b = np.float64(column.need_total[j])
            complementarity = _complementarity(_gain(met_a[j], total_a), _gain(met_b[j], total_b))
            value = (
                w[Factor.complementarity] * complementarity
                + w[Factor.shared_priorities] * _shared(shared[j], total_a, total_b)
                + w[Factor.corridor] * ((corridors_a & column.corridors[j]) != 0)
                + w[Factor.language] * language[j]
                + w[Factor.timezone] * _timezone(utc_a, np.float64(column.utc[j]))
                + w[Factor.country_affinity] * affinity[j]
                + w[Factor.network] * _network(adamic_adar[j])
                + w[Factor.hub_damping] * (hub_a + column.hub[j]) / 2.0
            )
            allowed = (  # & rather than `and`: no branches, so the loop vectorises
                column.open[j]
                & ~blocked[j]
                & (complementarity > 0)  # both must gain
                & (allow_same_country | (column.country[j] != ca))
            )
            partial[j] = value if allowed else -np.inf
        size, worst = 0, 0
        bound_realism = k > 0 and w[Factor.realism] > 0.0
        if bound_realism:
            _realism_row(a, cities, model, country_row)
        logpop_a, relative_a, degree_a = np.float64(cities.logpop[a]), cities.relative_logpop[a], cities.degree[a]
        log_degree_a = _log1p_count(model.log1p, degree_a)
        # Pass 2 takes the best partial scores first (about 4k of them, by a sample of at most 256), then the
        # others that can still beat the floor those left (it only rises): the bounds skip more, and most
        # candidates are dropped in one tight loop. The result does not depend on it.
        early = np.inf
        if 0 < 4 * k < m // 4:
            sample = partial[:: max(1, m // 256)]
            rank = len(sample) - max(1, 4 * k * len(sample) // m)
            early = np.partition(sample, rank)[rank]
        first = 0
        for j in range(m):
            if partial[j] >= early:
                visit[first] = j
                first += 1
        rest, at = first, 0
        while True:
            floor = (top_score[worst] if size == k else min_score) if k else -np.inf
            if at == first:  # the early ones done: the others that can still enter
                for j in range(m):
                    if not partial[j] >= early and partial[j] + rest_best + 1e-9 >= floor:
                        visit[rest] = j
                        rest += 1
            if at == rest:
                break
            j = visit[at]
            at += 1
            score = partial[j]
            if score + rest_best + 1e-9 < floor:
                continue
            step = min(max(int((cosines[j] + 1.0) * (BOUND_STEPS / 2)), 0), BOUND_STEPS - 1)
            distance_best = max(w[Factor.distance], 0.0) * model.distance_bound[step + 1]
            if score + distance_best + max(w[Factor.realism], 0.0) + 1e-9 < floor:
                continue
            # The realism logit but for its distance part (bounded over the step), from per-country terms and
            # the pair's own: an upper bound without the arc cosine.
            if bound_realism:
                b_in_a = column.partners_in[ca, j]
                logit = (
                    country_row[column.country[j]]
                    + column.realism_city[j]
                    + model.realism_distance_bound[step]
                    + beta[_F_GAP] * abs(logpop_a - np.float64(column.logpop[j]))
                    + beta[_F_DPROD] * log_degree_a * _log1p_count(model.log1p, column.degree[j])
                    + beta[_F_REL_GAP] * abs(relative_a - column.relative_logpop[j])
                    + beta[_F_AA] * adamic_adar[j]
                    + beta[_F_COMMON] * _log1p_count(model.log1p, int(common[j]))
                    + beta[_F_THREE_HOP]
                    * np.log1p(_three_hop_ratio(three_hop[j], np.float64(degree_a), np.float64(column.degree[j])))
                    + beta[_F_IN] * _log1p_count(model.log1p, b_in_a)
                    + beta[_F_HAS_IN] * (b_in_a > 0)
                    + beta[_F_TWO_HOP] * column.partners2_in[ca, j] / max(column.partners_degree[j], 1.0)
                    + beta[_F_NEAR] * _log1p_count(model.log1p, int(near_partners[j]))
                    + beta[_F_TIES] * _log1p_count(model.log1p, int(near_ties[j]))
                )
                if score + distance_best + w[Factor.realism] * _realism_value(logit + 1e-6) + 1e-9 < floor:
                    continue
            b = cand[j]
            cb = column.country[j]
            if b == a or _excludes(cities, a, cb) or _excludes(cities, b, ca):
                continue
            km = _distance_km(cosines[j])
            score += w[Factor.distance] * _distance_value(km)
            if score + max(w[Factor.realism], 0.0) + 1e-9 < floor:
                continue
            log1p, degree_b = model.log1p, column.degree[j]
            features = _realism_features(
                km,
                1.0 if ca == cb else 0.0,
                np.float64(cities.logpop[a]),
                np.float64(column.logpop[j]),
                model.top_logpop[ca],
                model.top_logpop[cb],
                _log1p_count(log1p, model.pair_counts[ca, cb]),
                model.lift[ca, cb],
                model.log_country_degree[ca],
                model.log_country_degree[cb],
                adamic_adar[j],
                _log1p_count(log1p, int(common[j])),
                _log1p_count(log1p, degree_a),
                _log1p_count(log1p, degree_b),
                _log1p_count(log1p, cities.partners_in[cb, a]),  # a's partners in b's country
                _log1p_count(log1p, column.partners_in[ca, j]),
                _two_hop_share(
                    np.float64(cities.partners2_in[cb, a]),
                    cities.partners_degree[a],
                    np.float64(column.partners2_in[ca, j]),
                    column.partners_degree[j],
                ),
                _three_hop_ratio(three_hop[j], np.float64(degree_a), np.float64(degree_b)),
                _log1p_count(log1p, int(near_partners[j])),
                _log1p_count(log1p, int(near_ties[j])),
            )
            logit = model.realism_offset
            for f in range(len(features)):
                logit += model.realism_beta[f] * features[f]
            score += w[Factor.realism] * _realism_value(logit)
            if not k:
                out_matrix[i, j] = score
                continue
            if score < min_score:
                continue
            if size < k:
                top_score[size], top_position[size] = score, b
                size += 1
            elif score > top_score[worst] or (score == top_score[worst] and b < top_position[worst]):
                top_score[worst], top_position[worst] = score, b
            else:
                continue
            if size == k:  # find the new weakest entry: lowest score, then highest position
                worst = 0
                for x in range(1, k):
                    if top_score[x] < top_score[worst] or (
                        top_score[x] == top_score[worst] and top_position[x] > top_position[worst]
                    ):
                        worst = x
        _unmark(links, column_of, count, steps, adamic_adar, common, three_hop, blocked, touched, walked)
        _walk_near(a, links, column_of, near_partners, near_ties, -1.0)
        if k:
            order = np.argsort(top_position[:size], kind="mergesort")
            order = order[np.argsort(-top_score[:size][order], kind="mergesort")]
            for x in range(size):
                out_position[i, x] = top_position[order[x]]
                out_score[i, x] = top_score[order[x]]


def columns(cities: Cities, cand: np.ndarray) -> tuple[Cities, np.ndarray]:
    """The candidates' rows of `cities` (the same arrays when the candidates are every city in order) and
    each position's column (-1: not a candidate)."""
    n = len(cities.open)
    column_of = np.full(n, -1, dtype=np.int64)
    column_of[cand] = np.arange(len(cand))
    if len(cand) == n and (cand == np.arange(n)).all():
        return cities, column_of
    features_first = {"offer", "need", "xyz", "partners_in", "partners2_in"}  # (features, n) arrays
    picked = {
        name: np.ascontiguousarray(value[:, cand] if name in features_first else value[cand])
        for name, value in cities._asdict().items()
    }
    return Cities(**picked), column_of


def rank_rows(rows, cand, k, min_score, cities, links, model):
    """Each row's top k candidates (every constraint passed, score ≥ min_score) as (positions, scores) arrays
    of shape (rows, k), best first, ties by lower position; unused slots have position -1."""
    positions, scores = np.empty((len(rows), k), dtype=np.int64), np.empty((len(rows), k))
    column, column_of = columns(cities, cand)
    _scan(rows, cand, cities, column, column_of, links, model, k, min_score, positions, scores, np.empty((0, 0)))
    return positions, scores


def score_rows(rows, cand, cities, links, model):
    """The score of every (row, candidate) pair; -inf where a constraint fails."""
    out = np.empty((len(rows), len(cand)))
    column, column_of = columns(cities, cand)
    empty = np.empty((0, 0), dtype=np.int64)
    _scan(rows, cand, cities, column, column_of, links, model, 0, 0.0, empty, np.empty((0, 0)), out)
    return out
