"""Schemathesis against the running stack, through the gateway, from the schema the gateway serves.

Every operation of /api/v1/openapi.json gets generated requests (valid and invalid, plus the
schema's examples) as a signed-in coordinator, with half the path ids replaced by real ones;
no response may be a 5xx, and each must conform to the schema: status code documented, content
type and body as declared. `max_examples` is 100 per operation when CI is set (.ci/run sets
it), 25 otherwise.

Nothing needs excluding: sign-in is fuzzed on a stack whose throttles never trip; a coordinator
cannot rotate keys, disable anyone or change roles (403), only rebind officials' cities, and
fuzzed tokens revoke nothing of ours.

One pytest test per operation, each a Hypothesis test over `operation.as_strategy(...)`: the
schema is loaded once the stack runs, and `schemathesis.pytest.from_fixture(...).parametrize()`
fails under pytest 9 (it relies on `Function._nodeid`, which pytest 9 no longer has).
"""

import json
import os
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import start_stack
from tests.support import city_body, client_for, create_user, eventually, partner_of

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
MAX_EXAMPLES = 100 if os.environ.get("CI", "").lower() not in ("", "0", "false") else 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Sign-in is fuzzed too: this stack's throttles are high enough never to lock anyone out.
UNTHROTTLED = {
    "CITYPAIR_IDENTITY_SIGNIN_ACCOUNT_FAILURES": "1000000",
    "CITYPAIR_IDENTITY_SIGNIN_ADDRESS_ATTEMPTS": "1000000",
    "CITYPAIR_IDENTITY_ACCESS_TOKEN_MINUTES": "15",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """This module's stack (it shadows conftest's `stack`, so `admin` signs in here): sign-ins are never throttled."""
    stack = start_stack(tmp_path_factory.mktemp("fuzz"), **UNTHROTTLED)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def real_ids(stack, admin) -> dict[str, list[str]]:
    """A few real cities (known to matching and pilot_zones), a pilot zone and users: ids the fuzzer may use."""
    first = city_body("Xi'an (fuzz)")
    bodies = [first, partner_of(first, "Almaty (fuzz)"), city_body("Tashkent (fuzz)", country_code="UZ")]
    cities = []
    for body in bodies:
        response = admin.post("/api/v1/cities", json=body)
        assert response.status_code == 201, response.text
        cities.append(response.json()["id"])
    for city in cities:
        eventually(lambda c=city: admin.get(f"/api/v1/cities/{c}/partners").status_code == 200, what="matching")
    official = create_user(admin, ["official"], cities[:1])
    observer = create_user(admin, ["observer"])
    with client_for(stack.config.gateway_url, official["email"]) as client:

        def draft():
            response = client.post("/api/v1/pilot-zones", json={"title": "Fuzz corridor", "city_ids": cities[:2]})
            return response.json()["id"] if response.status_code == 201 else None

        proposal = eventually(draft, what="pilot_zones to know the cities")
    return {"city_id": cities, "proposal_id": [proposal], "user_id": [official["id"], observer["id"]]}


@pytest.fixture(scope="module")
def coordinator_token(stack, admin) -> str:
    """The fuzzer's identity: a coordinator, signed in once (tokens last 15 minutes here)."""
    user = create_user(admin, ["coordinator"])
    with client_for(stack.config.gateway_url, user["email"]) as client:
        return client.headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture(scope="module")
def gateway_schema(stack, real_ids):
    """The schema as the gateway serves it, generating real ids for half the path parameters."""
    url = stack.config.gateway_url + "/api/v1/openapi.json"
    assert httpx.get(url, timeout=10).json() == json.loads(OPENAPI_FILE.read_text()), "the gateway serves another doc"
    schema = schemathesis.openapi.from_url(url)

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        real = {name: st.sampled_from(real_ids[name]) for name in path_parameters or {} if name in real_ids}
        if not real:
            return st.just(path_parameters)
        generated = {name: st.just(value) for name, value in path_parameters.items()}
        return st.one_of(st.just(path_parameters), st.fixed_dictionaries({**generated, **real}))

    return schema


def documented_operations() -> list:
    """Every operation of docs/openapi.json (the file the gateway serves), one test each."""
    paths = json.loads(OPENAPI_FILE.read_text())["paths"]
    return [pytest.param(m.upper(), p, id=f"{m.upper()} {p}") for p, item in paths.items() for m in item]


@pytest.mark.parametrize("method,path", documented_operations())
def test_operation_conforms_to_the_gateway_schema(gateway_schema, stack, coordinator_token, method, path):
    operation = gateway_schema[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
        *operation.get_strategies_from_examples(),
    )
    headers = {"Authorization": f"Bearer {coordinator_token}"}

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def fuzz(case):
        case.call_and_validate(base_url=stack.config.gateway_url, headers=headers, checks=CHECKS, timeout=30)

    fuzz()
