"""OpenAPI links of the gateway's document: which answer supplies the ids (and ETags) of which next request.

They let a client, or schemathesis's stateful phase, go on from a real city, proposal, pair, user, notification
or round: register a city, then edit, publish or confirm it; draft a proposal, then have its second member
confirm, transition it or assign it; read a city's partners (or a proposal's lead city's), then explain or
decide the pair. Every write answers with the resource and its new ETag, so the next write can follow it.
Links may cross services (profiles' `registerCity` to matching's `partners`), so they are added to the merged
document, keyed by operationId.
"""

from typing import Any

CITY = {"city_id": "$response.body#/id"}
CITY_WITH_ETAG = {**CITY, "header.If-Match": "$response.header.ETag"}
PROPOSAL = {"proposal_id": "$response.body#/id"}
PROPOSAL_WITH_ETAG = {**PROPOSAL, "header.If-Match": "$response.header.ETag"}
PAIR_OF_FIRST_PARTNER = {"city_a": "$request.path.city_id", "city_b": "$response.body#/items/0/city_id"}
PAIR = {"city_a": "$response.body#/city_a", "city_b": "$response.body#/city_b"}

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
    "partners": {"city_id": "$response.body#/lead_city_id"},
}
# Writes that answer with the resource (and its new ETag); a retired city takes no more writes.
CITY_WRITES = ("updateCity", "replaceCity", "publishCity", "verifyCity", "confirmCity")
PROPOSAL_WRITES = ("updateProposal", "confirmMembership", "transition", "assign")
FROM_A_USER = {"getUser": {"user_id": "$response.body#/id"}, "updateUser": {"user_id": "$response.body#/id"}}

# (operationId, status) -> {operationId of the next request: its parameters, as runtime expressions}
LINKS: dict[tuple[str, str], dict[str, dict[str, str]]] = {
    ("registerCity", "201"): FROM_A_CITY,
    ("getCity", "200"): FROM_A_CITY,
    **{(write, "200"): FROM_A_CITY for write in CITY_WRITES},
    ("directory", "200"): {"getCity": {"city_id": "$response.body#/items/0/id"}},
    ("partners", "200"): {"explainMatch": PAIR_OF_FIRST_PARTNER, "decide": PAIR_OF_FIRST_PARTNER},
    ("explainMatch", "200"): {"decide": PAIR},
    ("decide", "201"): {"explainMatch": PAIR},
    ("createProposal", "201"): FROM_A_PROPOSAL,
    ("getProposal", "200"): FROM_A_PROPOSAL,
    **{(write, "200"): FROM_A_PROPOSAL for write in PROPOSAL_WRITES},
    ("listProposals", "200"): {"getProposal": {"proposal_id": "$response.body#/items/0/id"}},
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
        response["links"] = {
            _link_name(target): {"operationId": operations[target]["operationId"], "parameters": parameters}
            for target, parameters in targets.items()
        }


def _link_name(operation_id: str) -> str:
    return operation_id[:1].upper() + operation_id[1:]
