"""Schemathesis against the running stack, through the gateway, from the schema the gateway serves, with every
check it has (`--checks all`) and every phase (`run --phases examples,coverage,fuzzing,stateful`).

Every operation of /api/v1/openapi.json gets, as `schemathesis run` would: the schema's examples, the coverage
phase's boundary cases (each field's edges, each constraint broken, missing parameters, undeclared methods), and
generated requests, valid and invalid; `max_examples` is 100 per operation when CI is set (.ci/run sets it), 25
otherwise. The stateful phase then runs SCENARIOS scenarios of up to STEPS calls along the schema's links. Every
response goes through all of schemathesis's checks: no 5xx, status, content type, headers and body as declared,
invalid data refused, valid data accepted, `Allow` on 405s, 405 for undeclared methods, credentials enforced,
deleted things gone, created things there.

The fuzzer is a coordinator who is also the official of one real city and of those valid bodies list, signed in
through the schema's bearer scheme (so a case that leaves credentials out goes without them); half the valid path
ids are real ones. What a valid request must be beyond what a schema can say is made so before it is sent, and for
valid requests only: a new Idempotency-Key each time, bodies naming real cities and coordinators, an end date
after the start (`satisfy_what_no_schema_says`). Check settings: 412 is an accepted answer to a valid request (an
If-Match of another version, like 409) and 413 to an invalid one (a body past the gateway's limit). Nothing else is
excluded, but `EXCLUSIONS` and `STATEFUL_EXCLUSIONS` (why there); sign-in is fuzzed on a stack whose throttles
never trip; the fuzzer cannot rotate keys, disable anyone or change roles (403), only rebind officials' cities, and
fuzzed tokens revoke nothing of ours.

One pytest test per operation, each built by schemathesis's `create_test` (the pytest plugin's builder): the
schema is loaded once the stack runs, and `schemathesis.pytest.from_fixture(...).parametrize()` fails under
pytest 9 (it relies on `Function._nodeid`, which pytest 9 no longer has). `pytest -s` prints the counts.
"""

import json
import os
import re
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from schemathesis.checks import CHECKS, is_check_class, load_all_checks
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.hypothesis.builder import HypothesisTestConfig, HypothesisTestMode, create_test

from tests.e2e.conftest import start_stack
from tests.support import city_body, client_for, create_user, eventually, partner_of

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")
MAX_EXAMPLES = 100 if IN_CI else 25
# The stateful phase: scenarios, each up to STEPS linked calls.
SCENARIOS = 100 if IN_CI else 25
STEPS = 10
load_all_checks()
# Every check schemathesis has (`--checks all`), as functions `call_and_validate` runs on each response.
ALL_CHECKS = [check for check in CHECKS.get_all() if not is_check_class(check)]
MODES = [HypothesisTestMode.EXAMPLES, HypothesisTestMode.COVERAGE, HypothesisTestMode.FUZZING]
# The stateful phase retires and edits the real cities (their ids reach it through links and path parameters), so
# a later scenario's schema-valid draft naming one of them is refused 422 (`city … is retired`): the state a run
# left, which no schema can say. Every other check still runs on these operations (and `EXCLUSIONS` apply too).
STATEFUL_EXCLUSIONS = {
    ("POST /api/v1/pilot-zones", "positive_data_acceptance"),
    ("PATCH /api/v1/pilot-zones/{proposal_id}", "positive_data_acceptance"),
}
# What a password must be beyond any pattern (citypair_identity.passwords: not one of the common passwords, not
# repetitive, not the account's own words) and the current password a change must name are refused 422 with the
# field: a valid-looking request no schema can tell from an acceptable one. Every other check still runs on these.
# So is a link's token a mail brought (an invitation's, a reset's: 410 if it is none; an unsubscribe link's: 422).
EXCLUSIONS = {
    ("POST /api/v1/me/password", "positive_data_acceptance"),
    ("POST /api/v1/users", "positive_data_acceptance"),
    ("POST /api/v1/invitations/accept", "positive_data_acceptance"),
    ("POST /api/v1/password-resets/complete", "positive_data_acceptance"),
    ("POST /api/v1/unsubscribe", "positive_data_acceptance"),
}
# The operations the stateful phase must reach with real objects (their links in `citypair_cli.links`), and the
# answers that prove it did: done, or refused for the state of a proposal or pair that was found (409: the move or
# confirmation is not open, the pair is excluded or already decided; 412: an ETag of another version).
REACHED_WHEN = {
    "POST /api/v1/pilot-zones/{proposal_id}/transitions": {200, 409, 412},
    "POST /api/v1/pilot-zones/{proposal_id}/members/{city_id}/confirm": {200, 409},
    "POST /api/v1/matches/{city_a}/{city_b}/decision": {201, 409},
}
# What the API takes as an Idempotency-Key (its schema's pattern), which it wants new for each request.
IDEMPOTENCY_KEY = re.compile(r"[!-~]|[!#-~][ -~]*[!-~]|\"[ -~]*[!#-~]|\"[ -~]+\"")
# Sign-in is fuzzed too: this stack's throttles are high enough never to lock anyone out.
UNTHROTTLED = {
    "CITYPAIR_IDENTITY_SIGNIN_ACCOUNT_FAILURES": "1000000",
    "CITYPAIR_IDENTITY_SIGNIN_ADDRESS_ATTEMPTS": "1000000",
    "CITYPAIR_IDENTITY_ACCESS_TOKEN_MINUTES": "15",
}


SENT: list[str] = []  # the operation of each generated request (`pytest -s` prints how many)


@pytest.fixture(scope="module", autouse=True)
def count_requests():
    yield
    print(f"\n{len(SENT)} generated requests over {len(set(SENT))} operations")


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
    # As many as a proposal may have (8) for valid bodies that list cities: never path ids, so never retired.
    bodies += [city_body(f"Fuzz town {n}", country_code="MN") for n in range(8)]
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
        "city_id": cities[:3],
        "proposal_id": [proposal],
        "user_id": [official["id"], observer["id"]],
        "listed_city_id": cities[3:],
    }


@pytest.fixture(scope="module")
def fuzzer(stack, admin, real_ids) -> dict:
    """The fuzzer's identity (its `id`), signed in once (`headers`; tokens last 15 minutes here): a coordinator,
    and the official of the first city and of the cities valid bodies list. Only an official of a member drafts
    a proposal, and drafting confirms the drafter's cities: so a scenario's draft is accepted, and its links go on
    to a proposal the fuzzer may confirm, submit, review and decide the pairing of (real objects, not 403s)."""
    user = create_user(admin, ["coordinator", "official"], real_ids["city_id"][:1] + real_ids["listed_city_id"])
    with client_for(stack.config.gateway_url, user["email"]) as client:
        return {"id": user["id"], "headers": {"Authorization": client.headers["Authorization"]}}


@pytest.fixture(scope="module")
def gateway_schema(stack, real_ids, fuzzer):
    """The schema as the gateway serves it, generating real ids for half the path parameters, signing the fuzzer
    in where a request has no credentials it means to leave out (a negative case may omit them)."""
    url = stack.config.gateway_url + "/api/v1/openapi.json"
    assert httpx.get(url, timeout=10).json() == json.loads(OPENAPI_FILE.read_text()), "the gateway serves another doc"
    schema = schemathesis.openapi.from_url(url)

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        # Only a valid id becomes a real one: a negative case's invalid id stays invalid.
        patterns = {p.name: re.compile(p.definition["schema"]["pattern"]) for p in context.operation.path_parameters}
        real = {
            name: st.sampled_from(real_ids[name])
            for name, value in (path_parameters or {}).items()
            if name in real_ids and isinstance(value, str) and patterns[name].search(value)
        }
        if not real:
            return st.just(path_parameters)
        generated = {name: st.just(value) for name, value in path_parameters.items()}
        return st.one_of(st.just(path_parameters), st.fixed_dictionaries({**generated, **real}))

    @schema.auth()
    class Fuzzer:
        def get(self, case, context):
            return fuzzer["headers"]["Authorization"]

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": data}

    checks = schema.config.checks
    # A schema-valid If-Match naming another version is refused 412, as a current request is 409 when the
    # state forbids it: no schema can say which ETag is current.
    checks.positive_data_acceptance.expected_statuses.append("412")
    # A body past the gateway's limit (2 MB: a negative array of 25,001 texts) is refused 413 before any service.
    checks.negative_data_rejection.expected_statuses.append("413")
    return schema


def documented_operations() -> list:
    """Every operation of docs/openapi.json (the file the gateway serves), one test each."""
    paths = json.loads(OPENAPI_FILE.read_text())["paths"]
    return [pytest.param(m.upper(), p, id=f"{m.upper()} {p}") for p, item in paths.items() for m in item]


def fuzz_settings(max_examples: int, **more) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
        **more,
    )


def use_a_new_idempotency_key(case) -> None:
    """Send a generated valid Idempotency-Key as a client does: new for each request (the schema says so, in
    words). Generated keys repeat (`0`, `00`, …), and a key already used for another request is refused (422, as
    the IETF draft has it), which `positive_data_acceptance` would blame on the schema. Invalid keys stay."""
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and IDEMPOTENCY_KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = str(uuid.uuid4())


def satisfy_what_no_schema_says(case, coordinator_id: str, city_ids: list[str]) -> None:
    """Make a valid body valid in what a schema cannot say: it names what exists (real cities, as many as it
    lists, up to 8, the lead one of them or none; a real coordinator, the fuzzer; a reply to no comment rather than to a
    made-up one), and its end date is not before its start date. A well-formed id of nothing is refused 422 (`no
    coordinator has the id …`, `unknown city …`), as is an end before the start. Invalid bodies stay as
    generated."""
    body = case.body
    if case.meta is None or not case.meta.generation.mode.is_positive or not isinstance(body, dict):
        return
    for holder in (body, body.get("cities")):
        if isinstance(holder, dict) and isinstance(holder.get("city_ids"), list):
            holder["city_ids"] = city_ids[: len(holder["city_ids"])]
    if body.get("lead_city_id") is not None:
        if body.get("city_ids"):
            body["lead_city_id"] = body["city_ids"][-1]
        else:  # an edit's lead is one of the proposal's cities
            del body["lead_city_id"]
    if body.get("coordinator_id") is not None:
        body["coordinator_id"] = coordinator_id
    body.pop("parent_id", None)
    start, end = body.get("start_date"), body.get("end_date")
    if isinstance(start, str) and isinstance(end, str) and end < start:
        body["start_date"], body["end_date"] = end, start


@pytest.mark.parametrize("method,path", documented_operations())
def test_operation_conforms_to_the_gateway_schema(gateway_schema, stack, fuzzer, real_ids, method, path):
    operation = gateway_schema[path][method]

    def call(case):
        SENT.append(operation.label)
        use_a_new_idempotency_key(case)
        satisfy_what_no_schema_says(case, fuzzer["id"], real_ids["listed_city_id"])
        case.call_and_validate(base_url=stack.config.gateway_url, checks=checks, timeout=30)

    checks = [c for c in ALL_CHECKS if (operation.label, c.__name__) not in EXCLUSIONS]
    config = HypothesisTestConfig(project=gateway_schema.config, modes=MODES, settings=fuzz_settings(MAX_EXAMPLES))
    create_test(operation=operation, test_func=call, config=config)()


def test_linked_operations_conform_to_the_gateway_schema(gateway_schema, stack, fuzzer, real_ids):
    """The stateful phase: SCENARIOS scenarios along the schema's links (`citypair_cli.links`), with real ids.

    It should reach real objects where the workflow is, not only conform: `pytest -s` prints the answers per
    operation and which of REACHED_WHEN were not reached with a real object. That is reported, not asserted:
    measured (CI=true, 2026-11), transitions reached real proposals 9 times in one full run and 0 in another;
    confirmations and decisions reached them in the stateful test alone (confirm 200 ×2, decide 201 ×1) but not
    always after the other phases (decide 0 of 87, confirm 1 of 43): those phases retire and draft with the
    listed cities, so most of this phase's drafts are refused (422 retired, 409 duplicate) and the links from a
    new proposal rarely fire, while a decision also needs a pair the fuzzer represents one side of, which partner
    lists of the real cities seldom give. The links' own reach (that they take a client from a new city to a
    decision, and from a draft through confirmation, transitions and assignment, with real ids) is asserted
    deterministically in test_openapi_links.py; this fuzzer's reach stays reported.

    A scenario against a live stack cannot be replayed (the ids, lists and versions it saw have moved on), so
    Hypothesis finds its data generation "flaky" now and then; as schemathesis's own runner does, the run goes
    on with the scenarios left. For the same reason failures are gathered, not raised inside Hypothesis (whose
    replay of a failing scenario would end in that error and hide the failure itself).
    """
    base_url = stack.config.gateway_url
    failures: dict[tuple, str] = {}
    scenarios = []
    answered = []

    class Scenarios(gateway_schema.as_state_machine()):
        def before_call(self, case):
            use_a_new_idempotency_key(case)
            satisfy_what_no_schema_says(case, fuzzer["id"], real_ids["listed_city_id"])

        def get_call_kwargs(self, case):
            return {"base_url": base_url, "timeout": 30}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            answered.append((case.operation.label, response.status_code))
            excluded = STATEFUL_EXCLUSIONS | EXCLUSIONS
            checks = [c for c in ALL_CHECKS if (case.operation.label, c.__name__) not in excluded]
            try:
                case.validate_response(response, checks=checks, transport_kwargs=kwargs, recorder=self.recorder)
            except FailureGroup as group:
                kinds = tuple(sorted(type(failure).__name__ for failure in group.exceptions))
                failures.setdefault((case.operation.label, kinds), str(group))

        def teardown(self):
            scenarios.append(self)

    for _ in range(20):
        try:
            Scenarios.run(settings=fuzz_settings(SCENARIOS - len(scenarios), stateful_step_count=STEPS))
            break
        except Flaky:
            if len(scenarios) >= SCENARIOS:
                break
    print(f"stateful: {len(scenarios)} scenarios, {len(answered)} calls")
    reach: dict[str, Counter] = {label: Counter() for label in REACHED_WHEN}
    for label, status in answered:
        if status < 500:
            reach.setdefault(label, Counter())[status] += 1
    for label, statuses in sorted(reach.items()):
        print(f"  {label}: {dict(sorted(statuses.items()))}")
    assert not failures, "\n\n".join(failures.values())
    # Reported, not asserted: whether a run's scenarios reach a real proposal depends on what the earlier phases
    # left (retired cities, duplicate drafts), and the same code reached transitions 9 times in one run, 0 in
    # another. A failing CI on that would test the fuzzer's luck, not the API.
    unreached = {label: dict(reach[label]) for label in REACHED_WHEN if not REACHED_WHEN[label] & set(reach[label])}
    print(f"stateful: not reached with a real object this run: {unreached or 'none'}")
