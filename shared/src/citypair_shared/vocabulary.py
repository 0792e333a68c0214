"""The closed sets of values the APIs speak in: profile and proposal statuses, match decisions and their reasons.

Defined once, here, so that the services validate against them and web labels them (web may import shared, never
a service): a value added here is offered by the API and must be named by the pages (tests/unit/test_web_vocabulary.py).
The enums' class names are their OpenAPI schema names (`Status`, `DeclineReason`, `AcceptReason`): renaming one
changes the published contract. Which status may follow which is the pilot-zones workflow's (`workflow.ALLOWED`),
and the API gives each proposal's `allowed_transitions`.
"""

from enum import StrEnum
from typing import Literal

CityStatus = Literal["draft", "published", "retired"]


# A pilot-zone proposal's state (a comment, not a docstring: that would become the schema's description).
class Status(StrEnum):
    draft = "draft"
    submitted = "submitted"
    under_review = "under_review"
    changes_requested = "changes_requested"
    approved = "approved"
    rejected = "rejected"
    active = "active"
    completed = "completed"
    withdrawn = "withdrawn"


Decision = Literal["accept", "decline"]
# A pair's state: open until a side declines or both accept.
MatchStatus = Literal["open", "accepted", "declined"]


class DeclineReason(StrEnum):
    not_a_priority = "not_a_priority"
    themes_do_not_fit = "themes_do_not_fit"
    too_far = "too_far"
    language = "language"
    no_capacity = "no_capacity"
    existing_cooperation_elsewhere = "existing_cooperation_elsewhere"
    policy = "policy"
    other = "other"


class AcceptReason(StrEnum):
    complementary_themes = "complementary_themes"
    shared_priorities = "shared_priorities"
    existing_ties = "existing_ties"
    corridor = "corridor"
    other = "other"


# Why a programme round left a city without a new partner.
class UnmatchedReason(StrEnum):
    at_capacity = "at_capacity"
    no_allowed_partner = "no_allowed_partner"
    paired_elsewhere = "paired_elsewhere"
