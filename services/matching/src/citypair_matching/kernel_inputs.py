"""The compiled kernel's inputs (`scoring.Cities`, `Links`, `Model`) assembled from the index's parts."""

import numpy as np

from citypair_matching import scoring
from citypair_matching.graph import DECLINE_EXCLUSION, PartnershipGraph
from citypair_matching.realism import RealismModel
from citypair_matching.rows import MAX_COUNTRIES, Rules, Table, Weights


def kernel_inputs(
    table: Table, graph: PartnershipGraph, realism: RealismModel, weights: Weights, rules: Rules
) -> tuple[scoring.Cities, scoring.Links, scoring.Model]:
    """What the compiled kernel reads: column views, the graph and the declines as CSR arrays, the weights in the
    order of the factors. `now` is 0 here: the caller sets it (`Model._replace`)."""
    c, n = table.cols, len(table)
    t = table.columns_t()
    partners2_in, partners_degree = graph.hops()
    country_degree, total_degree, top_logpop = graph.country_terms()
    beta = realism.coef / realism.std
    degree = c["degree"][:n]
    logpop, country = c["logpop"][:n].astype(np.float64), c["country"][:n]
    excluded = np.zeros((n, MAX_COUNTRIES // 64), dtype=np.uint64)
    for p in table.excluders:
        for code in table.rows[p].excluded_countries:
            if (i := table.countries.index.get(code)) is not None:
                excluded[p, i // 64] |= np.uint64(1) << np.uint64(i % 64)
    cities = scoring.Cities(
        offer=t["offer_level"],
        need=t["need_level"],
        need_total=c["need_total"][:n],
        xyz=t["xyz"],
        utc=c["utc"][:n],
        logpop=c["logpop"][:n],
        country=c["country"][:n],
        corridors=c["corridors"][:n],
        languages=c["languages"][:n],
        hub=scoring.hubness(degree.astype(np.float64)),
        degree=degree,
        open=c["active"][:n] & c["eligible"][:n] & (degree < c["capacity"][:n]),
        excluded=excluded,
        has_excluded=excluded.any(axis=1),
        partners_in=t["partners_in"],
        partners2_in=partners2_in,
        partners_degree=partners_degree[:n],
        realism_city=scoring.realism_city_terms(beta, logpop, np.log1p(degree.astype(np.float64))),
        relative_logpop=logpop - top_logpop[country],
    )
    declines = sorted(
        (table.position[a], table.position[b], at.timestamp())
        for a, others in graph.declined.items()
        if a in table.position
        for b, at in others.items()
        if b in table.position
    )
    declined = np.array(declines, dtype=np.float64).reshape(-1, 3)
    declined_indptr = np.zeros(n + 1, dtype=np.int64)
    declined_indptr[1:] = np.cumsum(np.bincount(declined[:, 0].astype(np.int64), minlength=n))
    indptr, neighbours, inverse_log = graph.csr()
    nearby, nearer = graph.near()
    links = scoring.Links(
        indptr=indptr,
        neighbours=neighbours,
        inverse_log=inverse_log.astype(np.float64),
        near_indptr=nearby.indptr.astype(np.int64),
        near=nearby.indices.astype(np.int64),
        nearer_indptr=nearer.indptr.astype(np.int64),
        nearer=nearer.indices.astype(np.int64),
        declined_indptr=declined_indptr,
        declined=declined[:, 1].astype(np.int64),
        declined_at=declined[:, 2].copy(),
    )
    model = scoring.Model(
        weights=np.array(weights.values, dtype=np.float64),
        realism_beta=beta,
        realism_offset=float(realism.intercept - (beta * realism.mean).sum()),
        countries=table.countries_in_use(),
        pair_counts=graph.pair_counts,
        affinity=scoring.affinity_value(graph.pair_counts.astype(np.float64)),
        lift=scoring.country_lift(
            graph.pair_counts.astype(np.float64), country_degree[:, None], country_degree[None, :], total_degree
        ),
        log_country_degree=np.log1p(country_degree),
        top_logpop=top_logpop,
        allow_same_country=rules.allow_same_country,
        now=0.0,
        decline_seconds=DECLINE_EXCLUSION.total_seconds(),
        distance_bound=scoring.DISTANCE_BOUND,
        log1p=scoring.LOG1P,
        realism_distance_bound=scoring.realism_distance_bounds(beta),
    )
    return cities, links, model
