"""Explanations: a pair's score as its named parts, the themes behind them, and each constraint passed or failed.

Faithful by construction: the parts are weight × value from the numpy reference (`reference.factor_values`) and
the score shown is their sum.
"""

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from citypair_matching.graph import DECLINE_EXCLUSION, PartnershipGraph
from citypair_matching.realism import RealismModel
from citypair_matching.reference import check_masks, factor_values
from citypair_matching.rows import CityRow, Rules, Table, Weights, level_of
from citypair_matching.scoring import FACTORS
from citypair_shared.themes import THEME_IDS

CHECKS = (
    "not_itself",
    "published",
    "not_partners",
    "not_declined",
    "city_capacity",
    "partner_capacity",
    "countries_not_excluded",
    "same_country_allowed",
    "eligible",
    "both_gain",
)


@dataclass(frozen=True)
class ThemeFlow:
    """One theme where `giver` offers what `taker` needs."""

    theme: str
    giver: str
    offer: int
    taker: str
    need: int

    @property
    def text(self) -> str:
        return f"{self.giver} offers {self.theme} at {self.offer}, {self.taker} needs it at {self.need}"


# Why a constraint passed or failed: the English of each detail's `code`, its placeholders the detail's `params`
# (city names, API keys, ISO country codes, dates, numbers), so that a client may say it in another language.
# `ineligible` is its `failures` (each a code and params of its own), one after another.
DETAILS = {
    "never_itself": "a city is never its own partner",
    "statuses": "{city_a} is {status_a}, {city_b} is {status_b}",
    "status": "{city} is {status}",
    "already_partners": "already partners",
    "not_yet_partners": "not yet partners",
    "declined_on": "declined on {date} (excluded for 12 months)",
    "not_declined": "not declined within 12 months",
    "capacity": "{city} has {partners} partners, capacity {capacity}",
    "excluded_countries": "{city_a} excludes {countries_a}, {city_b} excludes {countries_b}",
    "same_country_allowed": "{country_a}–{country_b}; same-country pairs allowed",
    "same_country_not_allowed": "{country_a}–{country_b}; same-country pairs not allowed",
    "rules": "rules: population ≥ {min_population:,}",
    "rules_with_theme": "rules: population ≥ {min_population:,}, theme {theme}",
    "ineligible": "{failures}",
    "population_below": "{city}: population {population:,} < {min_population:,}",
    "no_required_theme": "{city}: no offer or need in {theme}",
    "gains": "{city_a} gains {gain_a:.2f}, {city_b} gains {gain_b:.2f} (share of needs met)",
}


def english(code: str, params: dict) -> str:
    if code == "ineligible":
        return "; ".join(english(failure["code"], failure["params"]) for failure in params["failures"])
    # The only lists are of countries.
    shown = {name: ", ".join(v) or "no country" if isinstance(v, list) else v for name, v in params.items()}
    return DETAILS[code].format(**shown)


@dataclass(frozen=True)
class Check:
    """A constraint, whether it passed, and why: in English (`detail`) and as a code with its parameters."""

    name: str
    passed: bool
    detail: str
    code: str
    params: dict

    @classmethod
    def of(cls, name: str, passed: bool, code: str, params: dict) -> "Check":
        return cls(name, passed, english(code, params), code, params)


@dataclass(frozen=True)
class Suggestion:
    city_id: str
    name: str
    country_code: str
    score: float
    gain_to_city: float
    gain_to_partner: float
    contributions: dict[str, float] = field(default_factory=dict)
    themes_to_city: list[ThemeFlow] = field(default_factory=list)
    themes_to_partner: list[ThemeFlow] = field(default_factory=list)
    constraints_passed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Explanation:
    city_a: str
    city_b: str
    score: float
    eligible: bool
    values: dict[str, float]
    contributions: dict[str, float]
    gain_to_a: float
    gain_to_b: float
    themes_to_a: list[ThemeFlow]
    themes_to_b: list[ThemeFlow]
    shared_needs: list[str]
    checks: list[Check]
    distance_km: float


def theme_flows(giver: CityRow, taker: CityRow, top: int = 3) -> list[ThemeFlow]:
    """The themes where `giver` meets `taker`'s needs, strongest first."""
    flows = []
    for theme, levels in giver.themes.items():
        offer, need = int(levels.get("offer", 0)), level_of(taker, theme, "need")
        if min(offer, need) > 0:
            flows.append(ThemeFlow(theme, giver.name, offer, taker.name, need))
    flows.sort(key=lambda f: (-min(f.offer, f.need), -f.need, f.theme))
    return flows[:top]


def contributions(weights: Weights, values: dict) -> dict[str, float]:
    return {name: round(weight * float(values[name]), 6) + 0.0 for name, weight in weights.factors().items()}


@dataclass(frozen=True)
class Explainer:
    """What an explanation reads: the index's parts (see `core.MatchIndex`)."""

    table: Table
    links: PartnershipGraph
    realism: RealismModel
    weights: Weights
    rules: Rules

    def suggestions(self, pos: int, top: list[tuple[int, float]]) -> list[Suggestion]:
        """The ranked partners `top` of the city at `pos` (positions, best first) with their parts."""
        rows = self.table.rows
        values = factor_values(self.table, self.links, self.realism, np.array([pos]), np.array([p for p, _ in top]))
        result = []
        for j, (p, _) in enumerate(top):
            row = rows[p]
            parts = contributions(self.weights, {name: values[name][0, j] for name in FACTORS})
            result.append(
                Suggestion(
                    city_id=row.id,
                    name=row.name,
                    country_code=row.country_code,
                    score=round(sum(parts.values()), 6),
                    gain_to_city=round(float(values["_gain_a"][0, j]), 6),
                    gain_to_partner=round(float(values["_gain_b"][0, j]), 6),
                    contributions=parts,
                    themes_to_city=theme_flows(row, rows[pos]),
                    themes_to_partner=theme_flows(rows[pos], row),
                    constraints_passed=list(CHECKS),
                )
            )
        return result

    def explain(self, a: str, b: str, now: datetime) -> Explanation:
        """The score of any pair, its parts, the themes behind them, and each constraint passed or failed."""
        table = self.table
        pa, pb = table.position[a], table.position[b]
        block, rows = np.array([pa]), np.array([pb])
        values = factor_values(table, self.links, self.realism, block, rows)
        masks = check_masks(table, self.links, self.rules, block, rows, values, now)
        row_a, row_b = table.rows[pa], table.rows[pb]
        flat = {name: float(v[0, 0]) for name, v in values.items() if name != "_realism_inputs"}
        parts = contributions(self.weights, flat)
        checks = [
            Check.of(name, bool(masks[name][0, 0]), *self.check_detail(name, row_a, row_b, now))
            for name in CHECKS
            if name != "both_gain"
        ]
        gains = {"city_a": row_a.name, "gain_a": round(flat["_gain_a"], 6)}
        gains |= {"city_b": row_b.name, "gain_b": round(flat["_gain_b"], 6)}
        checks.append(Check.of("both_gain", bool(masks["both_gain"][0, 0]), "gains", gains))
        shared = [t for t in THEME_IDS if min(level_of(row_a, t, "need"), level_of(row_b, t, "need")) > 0]
        return Explanation(
            city_a=a,
            city_b=b,
            score=round(sum(parts.values()), 6),
            eligible=all(check.passed for check in checks),
            values={name: round(flat[name], 6) for name in FACTORS},
            contributions=parts,
            gain_to_a=round(flat["_gain_a"], 6),
            gain_to_b=round(flat["_gain_b"], 6),
            themes_to_a=theme_flows(row_b, row_a),
            themes_to_b=theme_flows(row_a, row_b),
            shared_needs=sorted(shared, key=lambda t: -min(level_of(row_a, t, "need"), level_of(row_b, t, "need"))),
            checks=checks,
            distance_km=round(flat["_distance_km"], 1),
        )

    def city_checks(self, city_id: str, now: datetime) -> list[Check]:
        """The constraints on the city itself: published, below its capacity, eligible under the rules."""
        table = self.table
        pos, c = table.position[city_id], table.cols
        row = table.rows[pos]
        return [
            Check.of("published", row.status == "published", "status", {"city": row.name, "status": row.status}),
            Check.of(
                "city_capacity",
                bool(c["degree"][pos] < c["capacity"][pos]),
                *self.check_detail("city_capacity", row, row, now),
            ),
            Check.of("eligible", bool(c["eligible"][pos]), *self.check_detail("eligible", row, row, now)),
        ]

    def check_detail(self, name: str, a: CityRow, b: CityRow, now: datetime) -> tuple[str, dict]:
        """Why the pair (`a`, `b`) passes or fails the check `name` (all but both_gain, which `explain` says from
        the gains): a code of DETAILS and its params."""
        degree, position = self.table.cols["degree"], self.table.position
        rules = self.rules
        match name:
            case "not_itself":
                return "never_itself", {}
            case "published":
                return "statuses", {"city_a": a.name, "status_a": a.status, "city_b": b.name, "status_b": b.status}
            case "not_partners":
                return ("already_partners" if self.links.graph.has_edge(a.id, b.id) else "not_yet_partners"), {}
            case "not_declined":
                at = self.links.declined.get(a.id, {}).get(b.id)
                if at and now - at < DECLINE_EXCLUSION:
                    return "declined_on", {"date": at.date().isoformat()}
                return "not_declined", {}
            case "city_capacity" | "partner_capacity":
                city = a if name == "city_capacity" else b
                return "capacity", {
                    "city": city.name,
                    "partners": int(degree[position[city.id]]),
                    "capacity": city.capacity,
                }
            case "countries_not_excluded":
                return "excluded_countries", {
                    "city_a": a.name,
                    "countries_a": sorted(a.excluded_countries),
                    "city_b": b.name,
                    "countries_b": sorted(b.excluded_countries),
                }
            case "same_country_allowed":
                code = "same_country_allowed" if rules.allow_same_country else "same_country_not_allowed"
                return code, {"country_a": a.country_code, "country_b": b.country_code}
            case "eligible":
                failures = rules.failures(a) + rules.failures(b)
                if failures:
                    return "ineligible", {"failures": [{"code": code, "params": params} for code, params in failures]}
                if rules.required_theme:
                    return "rules_with_theme", {"min_population": rules.min_population, "theme": rules.required_theme}
                return "rules", {"min_population": rules.min_population}
        raise ValueError(f"no such check: {name}")
