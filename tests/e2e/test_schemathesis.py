"""Schemathesis against the running stack, through the gateway, from the schema the gateway serves.

`schemathesis run --checks all` with every phase (examples, coverage, fuzzing, stateful), as an outside tester
runs it, with a seed nobody chose (printed on failure, to replay it): no 5xx; every status code, content type,
header and body as documented; schema-valid requests accepted and schema-violating ones refused; undeclared
methods answered 405 with a correct `Allow`; and the stateful phase follows the document's OpenAPI links from
real answers (a city registered, a proposal drafted, a pair's partners read) to the next requests with their ids.
`--max-examples` is 100 per operation when CI is set (.ci/run sets it), 25 otherwise; the stateful phase is
bounded in `schemathesis.toml` (scenarios and steps).

What only this suite knows is given in tests/e2e/schemathesis.toml and its hooks (schemathesis_hooks.py): the
tokens (a coordinator; an admin for users, the audit log and keys; an official of a real city for proposals and
decisions), real ids for half the path parameters, and a fresh Idempotency-Key per request. Sign-in is fuzzed
on a stack whose throttles never trip.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import start_stack
from tests.support import city_body, client_for, create_user, eventually, partner_of

ROOT = Path(__file__).resolve().parents[2]
OPENAPI_FILE = ROOT / "docs" / "openapi.json"
CONFIG_FILE = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 100 if os.environ.get("CI", "").lower() not in ("", "0", "false") else 25
# Sign-in is fuzzed too: this stack's throttles are high enough never to lock anyone out.
UNTHROTTLED = {
    "CITYPAIR_IDENTITY_SIGNIN_ACCOUNT_FAILURES": "1000000",
    "CITYPAIR_IDENTITY_SIGNIN_ADDRESS_ATTEMPTS": "1000000",
    "CITYPAIR_IDENTITY_SIGNIN_ACCOUNT_WIDE_FAILURES": "1000000",
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
    return {
        "city_id": cities,
        "proposal_id": [proposal],
        "user_id": [official["id"], observer["id"]],
        "official_email": official["email"],
    }


def token_of(stack, email: str) -> str:
    with client_for(stack.config.gateway_url, email) as client:
        return client.headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture(scope="module")
def tokens(stack, admin, real_ids) -> dict[str, str]:
    """The fuzzer's identities, signed in once (tokens last 15 minutes here)."""
    coordinator = create_user(admin, ["coordinator"])
    return {
        "CITYPAIR_FUZZ_COORDINATOR_TOKEN": token_of(stack, coordinator["email"]),
        "CITYPAIR_FUZZ_ADMIN_TOKEN": admin.headers["Authorization"].removeprefix("Bearer "),
        "CITYPAIR_FUZZ_OFFICIAL_TOKEN": token_of(stack, real_ids["official_email"]),
    }


def test_the_api_does_what_its_schema_says(stack, real_ids, tokens):
    url = stack.config.gateway_url + "/api/v1/openapi.json"
    assert httpx.get(url, timeout=10).json() == json.loads(OPENAPI_FILE.read_text()), "the gateway serves another doc"
    ids = {name: real_ids[name] for name in ("city_id", "proposal_id", "user_id")}
    env = {**os.environ, **tokens, "CITYPAIR_FUZZ_IDS": json.dumps(ids), "PYTHONPATH": str(ROOT)}
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG_FILE), "run", url),
        *("--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--no-color", "--generation-database", "none"),
    ]
    run = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
