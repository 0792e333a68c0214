"""The OpenAPI links of the gateway's document (`citypair_cli.links`), walked as a client generator would: each
next request takes its ids, ETags and body fields from the answer before it, by the link's runtime expressions,
and from nothing else. No fuzzer luck: this is where the links' reach is asserted (the stateful phase of
test_schemathesis.py only reports its own).

Two chains from real answers: register a draft city, publish it, read its partners, decide the pair with the first
one; and from those partners draft a proposal with the first one, have the second member's official confirm it,
submit it, review and approve it, have another coordinator take it over and activate it, each move following the
ETag link of the answer before. A link the walk needs that is missing from the document, or a runtime expression
that finds nothing (or the wrong thing) in its answer, fails the walk.
"""

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.test_schemathesis import OPENAPI_FILE, REACHED_WHEN
from tests.support import city_body, client_for, create_user, eventually, partner_of

PLACES = ("path", "query", "header", "cookie")


@dataclass
class Answer:
    """An operation's response, with the path parameters of its request (for `$request.path.*`)."""

    operation: str
    response: httpx.Response
    path: dict[str, str]

    @property
    def body(self) -> Any:
        return self.response.json()


def resolve(document: Any, pointer: str) -> Any:
    """RFC 6901: the value at `pointer` (`/items/0/id`) in `document`."""
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        document = document[int(token)] if isinstance(document, list) else document[token]
    return document


def evaluate(expression: str, answer: Answer) -> Any:
    """An OpenAPI runtime expression of the kinds links.py uses, against `answer` (the link's source)."""
    if expression.startswith("$response.body#"):
        try:
            return resolve(answer.body, expression.removeprefix("$response.body#"))
        except (KeyError, IndexError, ValueError, TypeError):
            found = answer.response.text[:300]
            raise AssertionError(f"{expression} finds nothing in {answer.operation}'s {found}") from None
    if expression.startswith("$response.header."):
        name = expression.removeprefix("$response.header.")
        assert name in answer.response.headers, f"{answer.operation} answered no {name} header ({expression})"
        return answer.response.headers[name]
    if expression.startswith("$request.path."):
        name = expression.removeprefix("$request.path.")
        assert name in answer.path, f"{answer.operation}'s request had no path parameter {name} ({expression})"
        return answer.path[name]
    raise AssertionError(f"a runtime expression this walk does not know: {expression}")


def fill(template: Any, answer: Answer) -> Any:
    """A `requestBody` template: its runtime expressions evaluated, wherever they are nested."""
    if isinstance(template, dict):
        return {key: fill(value, answer) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, answer) for value in template]
    if isinstance(template, str) and template.startswith("$"):
        return evaluate(template, answer)
    return template


class Links:
    """The document's operations by operationId, and a client's way along their links."""

    def __init__(self, document: dict[str, Any]):
        self.operations = {
            operation["operationId"]: (method.upper(), path, operation)
            for path, item in document["paths"].items()
            for method, operation in item.items()
            if isinstance(operation, dict) and "operationId" in operation
        }

    def link(self, source: str, status: int, target: str) -> dict[str, Any]:
        links = self.operations[source][2]["responses"].get(str(status), {}).get("links", {})
        found = [link for link in links.values() if link.get("operationId") == target]
        assert found, f"the document has no link from {source} ({status}) to {target}"
        return found[0]

    def call(self, client: httpx.Client, operation_id: str, *, path=None, headers=None, body=None) -> Answer:
        method, template, _ = self.operations[operation_id]
        path = path or {}
        missing = set(re.findall(r"\{(\w+)\}", template)) - set(path)
        assert not missing, f"nothing supplies {operation_id}'s path parameters {sorted(missing)}"
        url = re.sub(r"\{(\w+)\}", lambda m: quote(str(path[m.group(1)]), safe=""), template)
        response = client.request(method, url, headers=headers, json=body)
        return Answer(operation_id, response, path)

    def follow(self, client: httpx.Client, answer: Answer, target: str, body=None, *, check=True) -> Answer:
        """The `target` request the link from `answer` makes (with `body`'s fields besides the link's own)."""
        link = self.link(answer.operation, answer.response.status_code, target)
        given: dict[str, dict[str, Any]] = {place: {} for place in PLACES}
        for name, expression in link.get("parameters", {}).items():
            place, _, bare = name.rpartition(".")
            given[place or self._place(target, bare)][bare] = evaluate(expression, answer)
        if "requestBody" in link:
            body = {**(body or {}), **fill(link["requestBody"], answer)}
        after = self.call(client, target, path=given["path"], headers=given["header"], body=body)
        if check:
            assert after.response.is_success, f"{target}: {after.response.status_code} {after.response.text}"
        return after

    def _place(self, operation_id: str, name: str) -> str:
        parameters = self.operations[operation_id][2].get("parameters", [])
        places = [p["in"] for p in parameters if p["name"].lower() == name.lower()]
        assert places, f"{operation_id} has no parameter {name}"
        return places[0]


@pytest.fixture(scope="module")
def links(stack) -> Links:
    """The links of the document the gateway serves (docs/openapi.json, as test_schemathesis.py checks)."""
    document = httpx.get(stack.config.gateway_url + "/api/v1/openapi.json", timeout=10).json()
    assert document == json.loads(OPENAPI_FILE.read_text()), "the gateway serves another document"
    return Links(document)


@pytest.fixture(scope="module")
def partner(coordinator) -> str:
    """A published city that offers what the walk's city needs: its first partner (the only other city)."""
    response = coordinator.post("/api/v1/cities", json=partner_of(city_body("Xi'an (links)"), "Almaty (links)"))
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def partners(links, coordinator, partner) -> Answer:
    """registerCity (a draft) → publishCity (its ETag as If-Match) → partners, once matching lists any."""
    registered = links.call(coordinator, "registerCity", body={**city_body("Xi'an (links)"), "draft": True})
    assert registered.response.status_code == 201, registered.response.text
    city = registered.body["id"]
    published = links.follow(coordinator, registered, "publishCity")
    assert published.path == {"city_id": city} and published.body["id"] == city
    assert published.response.request.headers["If-Match"] == registered.response.headers["ETag"]
    assert published.body["status"] == "published"

    def listed() -> Answer | None:
        answer = links.follow(coordinator, registered, "partners", check=False)
        return answer if answer.response.status_code == 200 and answer.body["items"] else None

    answer = eventually(listed, what="matching to list the published city's partners")
    assert answer.path == {"city_id": city} and answer.body["items"][0]["city_id"] == partner
    return answer


def test_the_links_from_a_city_reach_a_decision_on_its_first_partner(links, partners, partner, official_of):
    city = partners.path["city_id"]
    decision = links.follow(
        official_of(city), partners, "decide", {"decision": "accept", "reason": "complementary_themes"}
    )
    assert decision.response.status_code == 201
    assert decision.path == {"city_a": city, "city_b": partner}
    assert (decision.body["city_id"], decision.body["decision"]) == (city, "accept")


def test_the_links_take_a_draft_with_the_first_partner_through_its_workflow(
    stack, admin, links, partners, partner, coordinator, official_of
):
    city = partners.path["city_id"]
    official, partners_official = official_of(city), official_of(partner)

    def drafted() -> Answer | None:  # pilot_zones learns the published city from its event
        answer = links.follow(official, partners, "createProposal", {"title": "Linked corridor"}, check=False)
        return answer if answer.response.status_code == 201 else None

    draft = eventually(drafted, what="pilot_zones to take a draft of the two cities")
    proposal = draft.body["id"]
    assert [m["city_id"] for m in draft.body["members"]] == [city, partner]

    confirmed = links.follow(partners_official, draft, "confirmMembership")
    assert confirmed.path == {"proposal_id": proposal, "city_id": partner}
    assert [m["confirmed"] for m in confirmed.body["members"]] == [True, True]

    taker = create_user(admin, ["coordinator"])
    with client_for(stack.config.gateway_url, taker["email"]) as other_coordinator:
        steps = [
            (official, "transition", {"to": "submitted"}),
            (coordinator, "transition", {"to": "under_review"}),
            (coordinator, "transition", {"to": "approved"}),
            (other_coordinator, "assign", {"comment": "taking it over"}),
            (other_coordinator, "transition", {"to": "active"}),
        ]
        answer = confirmed
        for client, target, body in steps:
            before, answer = answer, links.follow(client, answer, target, body)
            assert answer.path == {"proposal_id": proposal} and answer.body["id"] == proposal
            assert answer.body["version"] > before.body["version"]
            if target == "transition":  # the ETag link: the version the answer before had
                assert answer.response.request.headers["If-Match"] == before.response.headers["ETag"]
                assert answer.body["status"] == body["to"]
    assert answer.body["coordinator_id"] == taker["id"]
    assert [t["to_status"] for t in answer.body["transitions"]] == ["submitted", "under_review", "approved", "active"]


def test_every_operation_the_fuzzer_must_reach_is_the_target_of_a_link(links):
    by_label = {f"{method} {path}": operation_id for operation_id, (method, path, _) in links.operations.items()}
    targets = {
        link["operationId"]
        for _, _, operation in links.operations.values()
        for response in operation["responses"].values()
        for link in response.get("links", {}).values()
    }
    assert {label for label in REACHED_WHEN if by_label.get(label) not in targets} == set()
