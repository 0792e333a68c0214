"""OpenAPI links of the gateway's document: which answer supplies the ids (and ETags) of which next request.

They let a client, or schemathesis's stateful phase, go on from a real city, proposal, pair, user, notification
or round: register a city, then edit, publish or confirm it; read its partners, then explain or decide a pair, or
draft a proposal with the best one (or with two cities of the directory); draft a proposal, then have its second
member confirm, decide on the lead city's pairing with it, transition or assign the proposal, or read the lead
city's partners. An edit (PATCH, PUT) answers with the resource and its new ETag, so the next edit can follow
it; so do a transition, a confirmation and an assignment, so a proposal can be taken along its workflow
(confirm, submit, review, approve) one answer after another. Links may cross services (profiles' `registerCity`
to matching's `partners`), so they are added to the merged document, keyed by operationId.
"""

from typing import Any

CITY = {"city_id": "$response.body#/id"}
CITY_WITH_ETAG = {**CITY, "header.If-Match": "$response.header.ETag"}
PROPOSAL = {"proposal_id": "$response.body#/id"}
PROPOSAL_WITH_ETAG = {**PROPOSAL, "header.If-Match": "$response.header.ETag"}
PAIR_OF_FIRST_PARTNER = {"city_a": "$request.path.city_id", "city_b": "$response.body#/items/0/city_id"}
PAIR = {"city_a": "$response.body#/city_a", "city_b": "$response.body#/city_b"}
REQUEST_BODY = "requestBody"
DRAFT_WITH_FIRST_PARTNER = {"city_ids": ["$request.path.city_id", "$response.body#/items/0/city_id"]}
DRAFT_OF_FIRST_TWO = {"city_ids": ["$response.body#/items/0/id", "$response.body#/items/1/id"]}

FROM_A_CITY = {
    "getCity": CITY,
    "updateCity": CITY_WITH_ETAG,
    "replaceCity": CITY_WITH_ETAG,
    "publishCity": CITY_WITH_ETAG,
    "retireCity": CITY_WITH_ETAG,
    "verifyCity": CITY_WITH_ETAG,
    "confirmCity": CITY_WITH_ETAG,
    "cityHistory": CITY,
    "partners": CITY,
}
FROM_A_PROPOSAL = {
    "getProposal": PROPOSAL,
    "updateProposal": PROPOSAL_WITH_ETAG,
    "transition": PROPOSAL_WITH_ETAG,
    "assign": PROPOSAL,
    "addComment": PROPOSAL,
    "listComments": PROPOSAL,
    "timeline": PROPOSAL,
    # The lead (the first member) is the drafter's city, confirmed by drafting; the second one is not yet.
    "confirmMembership": {**PROPOSAL, "city_id": "$response.body#/members/1/city_id"},
    "decide": {"city_a": "$response.body#/lead_city_id", "city_b": "$response.body#/members/1/city_id"},
    "partners": {"city_id": "$response.body#/lead_city_id"},
}


def _of_first_item(links: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """`links` of one resource read from the first item of a list instead (a list answer carries no ETag)."""
    return {
        target: {
            name: value.replace("$response.body#/", "$response.body#/items/0/")
            for name, value in given.items()
            if value.startswith("$response.body#/")
        }
        for target, given in links.items()
    }


FROM_A_USER = {"getUser": {"user_id": "$response.body#/id"}, "updateUser": {"user_id": "$response.body#/id"}}

# (operationId, status) -> {operationId of the next request: its parameters (and, under REQUEST_BODY, fields
# of its body), as runtime expressions}
LINKS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("registerCity", "201"): FROM_A_CITY,
    ("getCity", "200"): FROM_A_CITY,
    ("updateCity", "200"): FROM_A_CITY,
    ("replaceCity", "200"): FROM_A_CITY,
    ("directory", "200"): {
        "getCity": {"city_id": "$response.body#/items/0/id"},
        "createProposal": {REQUEST_BODY: DRAFT_OF_FIRST_TWO},
    },
    ("partners", "200"): {
        "explainMatch": PAIR_OF_FIRST_PARTNER,
        "decide": PAIR_OF_FIRST_PARTNER,
        "createProposal": {REQUEST_BODY: DRAFT_WITH_FIRST_PARTNER},
    },
    ("explainMatch", "200"): {"decide": PAIR},
    ("createProposal", "201"): FROM_A_PROPOSAL,
    ("getProposal", "200"): FROM_A_PROPOSAL,
    ("updateProposal", "200"): FROM_A_PROPOSAL,
    ("transition", "200"): FROM_A_PROPOSAL,
    ("confirmMembership", "200"): FROM_A_PROPOSAL,
    ("assign", "200"): FROM_A_PROPOSAL,
    ("listProposals", "200"): _of_first_item(FROM_A_PROPOSAL),
    ("createUser", "201"): FROM_A_USER,
    ("listUsers", "200"): {"getUser": {"user_id": "$response.body#/items/0/id"}},
    ("myNotifications", "200"): {"readNotification": {"notification_id": "$response.body#/items/0/id"}},
    ("createRound", "201"): {"getRound": {"round_id": "$response.body#/id"}},
}


def add_links(document: dict[str, Any]) -> None:
    """Put LINKS on the responses of `document` (the merged one); a link naming an unknown operation raises."""
    operations = {
        operation["operationId"]: operation
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    for (source, status), targets in LINKS.items():
        response = operations[source]["responses"][status]
        response["links"] = {_link_name(target): _link(operations[target], given) for target, given in targets.items()}


def _link(operation: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    parameters = {name: value for name, value in given.items() if name != REQUEST_BODY}
    link = {"operationId": operation["operationId"], "parameters": parameters}
    if REQUEST_BODY in given:
        link[REQUEST_BODY] = given[REQUEST_BODY]
    return link


def _link_name(operation_id: str) -> str:
    return operation_id[:1].upper() + operation_id[1:]
