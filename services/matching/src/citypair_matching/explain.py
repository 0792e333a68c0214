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


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


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
        checks = [Check(name, bool(masks[name][0, 0]), self.check_detail(name, row_a, row_b, now)) for name in CHECKS]
        gains = (
            f"{row_a.name} gains {flat['_gain_a']:.2f}, {row_b.name} gains {flat['_gain_b']:.2f} (share of needs met)"
        )
        checks[-1] = Check("both_gain", checks[-1].passed, gains)
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
            Check("published", row.status == "published", f"{row.name} is {row.status}"),
            Check(
                "city_capacity",
                bool(c["degree"][pos] < c["capacity"][pos]),
                self.check_detail("city_capacity", row, row, now),
            ),
            Check("eligible", bool(c["eligible"][pos]), self.check_detail("eligible", row, row, now)),
        ]

    def check_detail(self, name: str, a: CityRow, b: CityRow, now: datetime) -> str:
        degree, position = self.table.cols["degree"], self.table.position
        da, db = int(degree[position[a.id]]), int(degree[position[b.id]])
        at = self.links.declined.get(a.id, {}).get(b.id)
        rules = self.rules
        return {
            "not_itself": "a city is never its own partner",
            "published": f"{a.name} is {a.status}, {b.name} is {b.status}",
            "not_partners": "already partners" if self.links.graph.has_edge(a.id, b.id) else "not yet partners",
            "not_declined": (
                f"declined on {at.date().isoformat()} (excluded for 12 months)"
                if at and now - at < DECLINE_EXCLUSION
                else "not declined within 12 months"
            ),
            "city_capacity": f"{a.name} has {da} partners, capacity {a.capacity}",
            "partner_capacity": f"{b.name} has {db} partners, capacity {b.capacity}",
            "countries_not_excluded": (
                f"{a.name} excludes {sorted(a.excluded_countries) or 'no country'}, "
                f"{b.name} excludes {sorted(b.excluded_countries) or 'no country'}"
            ),
            "same_country_allowed": (
                f"{a.country_code}–{b.country_code}; same-country pairs "
                + ("allowed" if rules.allow_same_country else "not allowed")
            ),
            "eligible": "; ".join(rules.failures(a) + rules.failures(b))
            or f"rules: population ≥ {rules.min_population:,}"
            + (f", theme {rules.required_theme}" if rules.required_theme else ""),
            "both_gain": "both cities must gain",
        }[name]
