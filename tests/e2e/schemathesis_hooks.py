"""Schemathesis hooks for tests/e2e/schemathesis.toml: real ids half the time, a fresh Idempotency-Key per request.

The ids come from the test (`CITYPAIR_FUZZ_IDS`: {"city_id": [...], "proposal_id": [...], "user_id": [...]}).
"""

import json
import os
import uuid

import schemathesis
from hypothesis import strategies as st

REAL_IDS: dict[str, list[str]] = json.loads(os.environ.get("CITYPAIR_FUZZ_IDS", "{}"))
IDEMPOTENCY_KEY = "Idempotency-Key"


@schemathesis.hook
def flatmap_path_parameters(ctx, path_parameters):
    """Half the cases name real resources (a random id names nothing: the request would end at 404)."""
    real = {name: st.sampled_from(REAL_IDS[name]) for name in path_parameters or {} if REAL_IDS.get(name)}
    if not real:
        return st.just(path_parameters)
    generated = {name: st.just(value) for name, value in path_parameters.items()}
    return st.one_of(st.just(path_parameters), st.fixed_dictionaries({**generated, **real}))


@schemathesis.hook.apply_to(method="POST", path="/api/v1/pilot-zones")
def flatmap_body(ctx, body):
    """Half the drafts name real member cities, the official's first, so they are created (and linked on)."""
    if not isinstance(body, dict) or not isinstance(body.get("city_ids"), list) or len(REAL_IDS["city_id"]) < 2:
        return st.just(body)
    real = {**body, "city_ids": REAL_IDS["city_id"][:2], "lead_city_id": None}
    return st.sampled_from([body, real])


@schemathesis.hook
def before_call(ctx, case, kwargs):
    """A key is new for each request (as the contract asks): a reused one is refused (422) for another request."""
    headers = case.headers or {}
    meta = case.meta
    if IDEMPOTENCY_KEY in headers and meta is not None and meta.generation.mode.is_positive:
        headers[IDEMPOTENCY_KEY] = str(uuid.uuid4())
