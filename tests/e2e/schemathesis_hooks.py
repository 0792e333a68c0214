"""Schemathesis hooks for tests/e2e/schemathesis.toml: what only this suite knows, added to valid requests.

The test describes its world in `CITYPAIR_FUZZ_WORLD`: {"ids": {path parameter: [real ids]}, "members":
{"official": [the official's cities], "partner": the partner official's city}, "keep": {"user_id": [the fuzzer's
identities], "city_id": [the member cities]}}.

- Real ids, half the time, for path parameters, except in the stateful phase (there the document's links name
  real resources).
- Half the drafts are ones the official may make: some of the official's cities with the partner official's city
  second, a new set each time (there is one open proposal per member set), so they are created and linked on.
- A fresh Idempotency-Key per request: a reused one is refused (422) for another request.
- The fuzzer's own identities are never edited and the member cities never retired (see `KEPT`).
- In the coverage phase, a sample of each long enum's values (see `filter_case`).
"""

import json
import os
import random
import uuid
from collections import Counter

import schemathesis
from schemathesis.generation.meta import CoveragePhaseData, TestPhase

WORLD: dict = json.loads(os.environ["CITYPAIR_FUZZ_WORLD"])
REAL_IDS: dict[str, list[str]] = WORLD["ids"]
IDEMPOTENCY_KEY = "Idempotency-Key"
DRAFT = "POST /api/v1/pilot-zones"
# An edit of a user voids their tokens, and a retired city is refused in drafts: ids taken from answers (which
# schemathesis reuses) could name the fuzzer's identities or member cities there, so spare ones are named instead.
KEPT = {"PATCH /api/v1/users/{user_id}": "user_id", "POST /api/v1/cities/{city_id}/retire": "city_id"}
# Hypothesis seeds the `random` module alike for every test case; these choices must differ from case to case.
CHANCE = random.Random()
# The coverage phase sends one request per value of an enum: 599 time zones, 249 countries (three fields),
# 184 languages and 178 currencies made ~5,000 of its ~9,000 requests. The validators check against the very
# lists the enums are made of, so an enum's first values and every 25th after them say as much.
ENUM_VALUE = "Enum value"
WHOLE_ENUM_UP_TO = 20
ENUM_STRIDE = 25
_enum_values_sent: Counter = Counter()


@schemathesis.hook
def filter_case(ctx, case):
    data = case.meta.phase.data if case.meta is not None else None
    if not isinstance(data, CoveragePhaseData) or ENUM_VALUE not in data.description:
        return True
    key = (case.operation.label, data.description)  # e.g. "Object with valid 'timezone' value: Enum value"
    sent = _enum_values_sent[key]
    _enum_values_sent[key] += 1
    return sent < WHOLE_ENUM_UP_TO or sent % ENUM_STRIDE == 0


@schemathesis.hook
def before_call(ctx, case, kwargs):
    kept = KEPT.get(case.operation.label)
    if kept and case.path_parameters.get(kept) in WORLD["keep"][kept]:
        case.path_parameters[kept] = CHANCE.choice(REAL_IDS[kept])
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return  # an invalid request stays as generated, whatever makes it invalid
    if IDEMPOTENCY_KEY in (case.headers or {}):
        case.headers[IDEMPOTENCY_KEY] = str(uuid.uuid4())
    if meta.phase.name != TestPhase.STATEFUL:
        for name in (case.path_parameters or {}).keys() & REAL_IDS.keys():
            if CHANCE.random() < 0.5:
                case.path_parameters[name] = CHANCE.choice(REAL_IDS[name])
    if case.operation.label == DRAFT and isinstance(case.body, dict) and CHANCE.random() < 0.5:
        case.body = {**case.body, "city_ids": _draft_members(), "lead_city_id": None}


def _draft_members() -> list[str]:
    lead, *others = CHANCE.sample(WORLD["members"]["official"], CHANCE.randint(2, 7))
    return [lead, WORLD["members"]["partner"], *others]
