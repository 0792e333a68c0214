"""The gateway's OpenAPI (docs/openapi.json) is current, and says what every operation can answer."""

import functools
import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from citypair_cli.openapi import OpenAPIMergeError, build_gateway_openapi
from citypair_shared.problems import PROBLEM_JSON

ROOT = Path(__file__).resolve().parents[2]
OPENAPI_FILE = ROOT / "docs" / "openapi.json"
REGENERATE = ".venv/bin/citypair openapi --output docs/openapi.json"
METHODS = ("get", "put", "post", "delete", "patch")
# Public by design: they are how one gets (or gives up) a token, or what verifies one; or what a link in a mail
# does for someone who cannot sign in (yet): accept an invitation, reset a password, unsubscribe.
PUBLIC = {
    ("post", "/api/v1/auth/token"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/.well-known/jwks.json"),
    ("post", "/api/v1/invitations/accept"),
    ("post", "/api/v1/password-resets"),
    ("post", "/api/v1/password-resets/complete"),
    ("post", "/api/v1/unsubscribe"),
}


def is_public(method: str, path: str) -> bool:
    return (method, path) in PUBLIC or path.startswith("/api/v1/open-data/")


@functools.cache
def fresh_build() -> dict:
    return build_gateway_openapi()


@pytest.fixture
def document() -> dict:
    return fresh_build()


def operations(document: dict):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


OPERATIONS = [pytest.param(m, p, id=f"{m.upper()} {p}") for m, p, _ in operations(fresh_build())]


def test_committed_document_is_a_fresh_build(document):
    assert OPENAPI_FILE.is_file(), f"docs/openapi.json is missing: run `{REGENERATE}`"
    committed = json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
    assert committed == document, f"docs/openapi.json is out of date: run `{REGENERATE}` and commit it"
    expected_text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    assert OPENAPI_FILE.read_text(encoding="utf-8") == expected_text, f"not formatted as written: run `{REGENERATE}`"


def test_document_is_openapi_31_for_the_gateway(document):
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "citypair API (gateway)"
    assert document["servers"] == [{"url": "/"}]
    bearer = document["components"]["securitySchemes"]["HTTPBearer"]
    assert bearer == {**bearer, "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_only_api_paths_are_published(document):
    assert document["paths"], "no paths at all"
    for path in document["paths"]:
        assert path.startswith(("/api/v1/", "/.well-known/")), path
    for hidden in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/"):
        assert hidden not in document["paths"]


def test_every_service_contributes(document):
    prefixes = ["/api/v1/auth/token", "/api/v1/cities", "/api/v1/cities/{city_id}/partners", "/api/v1/pilot-zones"]
    for prefix in prefixes:
        assert prefix in document["paths"], prefix


def test_every_reference_resolves(document):
    text = json.dumps(document)
    for name in set(re.findall(r'"#/components/schemas/([^"]+)"', text)):
        assert name in document["components"]["schemas"], name


def test_operation_ids_are_unique(document):
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("method,path", OPERATIONS)
def test_every_protected_operation_declares_bearer_and_401(document, method, path):
    operation = document["paths"][path][method]
    if is_public(method, path):
        assert not operation.get("security"), f"{method.upper()} {path} is public by design"
        return
    assert {"HTTPBearer": []} in operation.get("security", []), f"{method.upper()} {path} needs the bearer scheme"
    assert "401" in operation["responses"], f"{method.upper()} {path} does not declare 401"


@pytest.mark.parametrize("method,path", OPERATIONS)
def test_every_operation_lists_its_error_responses(document, method, path):
    operation = document["paths"][path][method]
    responses = operation["responses"]
    label = f"{method.upper()} {path}"
    errors = {code: r for code, r in responses.items() if code[0] in "45"}
    assert "503" in errors, f"{label}: the gateway's 503 is not listed"
    if operation.get("parameters") or operation.get("requestBody"):
        assert "422" in errors, f"{label} takes input but does not declare 422"
    if operation.get("requestBody"):
        assert "400" in errors, f"{label} takes a body but does not declare 400 (unreadable body)"
        assert "413" in errors, f"{label} takes a body but does not declare the gateway's 413"
    if any(p["in"] == "path" for p in operation.get("parameters", [])):
        assert "404" in errors, f"{label} names a resource but does not declare 404"
    for code, response in errors.items():
        content = response.get("content", {})
        assert set(content) == {PROBLEM_JSON}, f"{label} {code}: errors are {PROBLEM_JSON}, not {set(content)}"
        assert content[PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}, (label, code)
        assert response.get("description"), (label, code)


def test_a_schema_clash_fails_loudly(monkeypatch):
    from citypair_cli import openapi

    real = openapi.service_openapi

    def clashing(package: str) -> dict:
        doc = real(package)
        if package == "citypair_matching":
            doc["components"]["schemas"]["ProblemDetails"] = {"type": "string"}
        return doc

    monkeypatch.setattr(openapi, "service_openapi", clashing)
    with pytest.raises(OpenAPIMergeError, match="ProblemDetails"):
        openapi.build_gateway_openapi()


def test_operation_ids_are_the_route_functions_in_camel_case(document):
    for method, path, operation in operations(document):
        assert re.fullmatch(r"[a-z]+([A-Z][a-z0-9]*)*", operation["operationId"]), (method, path)
    assert not [name for name in document["components"]["schemas"] if name.startswith("Body_")]


def _input_strings(document: dict):
    """Every string schema a request may carry (parameters and bodies, through their references)."""
    schemas, seen, stack = document["components"]["schemas"], set(), []
    for _, _, operation in operations(document):
        stack += [p["schema"] for p in operation.get("parameters", [])]
        stack += [m["schema"] for m in operation.get("requestBody", {}).get("content", {}).values()]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack += node
        elif isinstance(node, dict):
            if (name := node.get("$ref", "").removeprefix("#/components/schemas/")) and name not in seen:
                seen.add(name)
                stack.append(schemas[name])
            if node.get("type") == "string":
                yield node
            stack += [v for k, v in node.items() if k not in ("enum", "const", "examples", "default", "properties")]
            stack += list(node.get("properties", {}).values())


def test_every_input_string_says_it_holds_no_nul(document):
    # Every service refuses U+0000 in any input: a pattern says so (or a closed list, or a format).
    for schema in _input_strings(document):
        if "enum" in schema or "const" in schema or "format" in schema:
            continue
        pattern = schema.get("pattern", "")
        names_nul = "\\u0000" in pattern or "\\x00" in pattern
        # A pattern that does not name U+0000 must be made of positive classes alone (none can match it).
        outside_classes = re.sub(r"\[(?!\^)(\\.|[^\]])*\]", "", pattern)
        assert pattern, schema
        assert names_nul or ("[^" not in pattern and not re.search(r"\\[SWD]|(?<!\\)\.", outside_classes)), schema


def test_every_link_names_an_operation(document):
    ids = {op["operationId"] for _, _, op in operations(document)}
    links = [
        link
        for _, _, op in operations(document)
        for response in op["responses"].values()
        for link in response.get("links", {}).values()
    ]
    assert links and {link["operationId"] for link in links} <= ids
