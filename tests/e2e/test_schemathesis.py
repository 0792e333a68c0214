"""Schemathesis against the running stack, through the gateway, from the schema the gateway serves.

`schemathesis run --checks all` with every phase (examples, coverage, fuzzing, stateful), as an outside tester
runs it, with a seed nobody chose (printed on failure, to replay it): no 5xx; every status code, content type,
header and body as documented; schema-valid requests accepted and schema-violating ones refused; undeclared
methods answered 405 with a correct `Allow`; and the stateful phase follows the document's OpenAPI links from
real answers (a city registered, a proposal drafted, a pair's partners read) to the next requests with their ids
and ETags, up to decisions, confirmations and transitions.

The coverage phase is the same everywhere (every keyword's boundary and violation, a sample of each long enum);
the fuzzing phase draws `--max-examples` cases per operation: 30 when CI is set (.ci/run sets it), 10 otherwise.
The stateful phase is bounded in `schemathesis.toml` (scenarios and steps).

What only this suite knows is given in tests/e2e/schemathesis.toml and its hooks (schemathesis_hooks.py): the
tokens (a coordinator; an admin for users, the audit log and keys; an official of ten cities for proposals and
decisions, and a partner official who confirms), real ids for half the path parameters, drafts the official may
make, and a fresh Idempotency-Key per request. Sign-in is fuzzed on a stack whose throttles never trip.
"""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import start_stack
from tests.support import city_body, client_for, create_user, eventually, partner_of

ROOT = Path(__file__).resolve().parents[2]
OPENAPI_FILE = ROOT / "docs" / "openapi.json"
CONFIG_FILE = Path(__file__).with_name("schemathesis.toml")
# Measured on the 2-core machine: the whole run takes ~2.5 min with 30, ~2 min with 10 (see README).
MAX_EXAMPLES = 30 if os.environ.get("CI", "").lower() not in ("", "0", "false") else 10
# Drafts name 2–7 of the official's cities (and the partner's): ~960 member sets, one open proposal each.
OFFICIAL_CITIES = 10
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


def register(admin: httpx.Client, body: dict) -> str:
    response = admin.post("/api/v1/cities", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def world(stack, admin) -> dict:
    """What the fuzzer works with: a coordinator, an official of ten cities and a partner official of one more
    (the drafts' member cities), a draft of theirs, and a spare city and users for every other path (so the
    edits, retirements and role changes of half the fuzzed requests leave the fuzzer's own as they are)."""
    lead = city_body("Xi'an (fuzz)")
    officials_cities = [register(admin, lead)]
    officials_cities += [register(admin, partner_of(lead, f"Partner {n} (fuzz)")) for n in range(1, OFFICIAL_CITIES)]
    partner_city = register(admin, partner_of(lead, "Almaty (fuzz)"))
    spare_city = register(admin, city_body("Tashkent (fuzz)", country_code="UZ"))
    for city in [*officials_cities, partner_city, spare_city]:
        eventually(lambda c=city: admin.get(f"/api/v1/cities/{c}/partners").status_code == 200, what="matching")
    admin_user = admin.get("/api/v1/me").json()
    coordinator = create_user(admin, ["coordinator"])
    official = create_user(admin, ["official"], officials_cities)
    partner_official = create_user(admin, ["official"], [partner_city])
    spare_users = [create_user(admin, ["observer"]), create_user(admin, ["official"], [spare_city])]
    with client_for(stack.config.gateway_url, official["email"]) as client:

        def draft():  # the city registered last is known, so every one is (their events come in order)
            body = {"title": "Fuzz corridor", "city_ids": [officials_cities[0], partner_city, spare_city]}
            response = client.post("/api/v1/pilot-zones", json=body)
            return response.json()["id"] if response.status_code == 201 else None

        proposal = eventually(draft, what="pilot_zones to know the cities")
    return {
        "ids": {
            "city_id": [spare_city],
            "city_a": officials_cities,
            "city_b": [partner_city, spare_city],
            "proposal_id": [proposal],
            "user_id": [user["id"] for user in spare_users],
        },
        "members": {"official": officials_cities, "partner": partner_city},
        "keep": {
            "user_id": [user["id"] for user in (admin_user, coordinator, official, partner_official)],
            "city_id": [*officials_cities, partner_city],
        },
        "identities": {
            "COORDINATOR": coordinator["email"],
            "OFFICIAL": official["email"],
            "PARTNER_OFFICIAL": partner_official["email"],
        },
    }


def token_of(stack, email: str) -> str:
    with client_for(stack.config.gateway_url, email) as client:
        return client.headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture(scope="module")
def tokens(stack, admin, world) -> dict[str, str]:
    """The fuzzer's identities, signed in once (tokens last 15 minutes here)."""
    signed_in = {f"CITYPAIR_FUZZ_{who}_TOKEN": token_of(stack, email) for who, email in world["identities"].items()}
    return {**signed_in, "CITYPAIR_FUZZ_ADMIN_TOKEN": admin.headers["Authorization"].removeprefix("Bearer ")}


def links_followed(events: Path) -> Counter:
    """How often the stateful phase sent a request with what a link took from an answer, by link
    (`<source> -> [<status>] <name> -> <target>`), from schemathesis's event log."""
    followed = Counter()
    for line in events.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished", {})
        for case in finished.get("recorder", {}).get("cases", {}).values():
            if case.get("transition") and case.get("is_transition_applied"):
                followed[case["transition"]["id"]] += 1
    return followed


def test_the_api_does_what_its_schema_says(stack, world, tokens, tmp_path):
    url = stack.config.gateway_url + "/api/v1/openapi.json"
    assert httpx.get(url, timeout=10).json() == json.loads(OPENAPI_FILE.read_text()), "the gateway serves another doc"
    env = {
        **os.environ,
        **tokens,
        "CITYPAIR_FUZZ_WORLD": json.dumps({key: world[key] for key in ("ids", "members", "keep")}),
        "PYTHONPATH": str(ROOT),
    }
    events = tmp_path / "events.ndjson"
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG_FILE), "run", url),
        *("--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--no-color", "--generation-database", "none"),
        *("--report", "ndjson", "--report-ndjson-path", str(events)),
    ]
    run = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    followed = links_followed(events)
    print(f"{len(followed)} links followed:", *(f"{n:4} {link}" for link, n in followed.most_common()), sep="\n")
    assert followed, "the stateful phase followed no link: " + run.stdout[-5000:]
