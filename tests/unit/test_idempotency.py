"""Pure parts of `Idempotency-Key` (reading the key, the request fingerprint, the OpenAPI it adds), and the
clients that send one: the CLI and the web pages."""

import httpx
import pytest

from citypair_cli import cli
from citypair_shared.idempotency import (
    FIELD,
    HEADER,
    IN_PROGRESS_TYPE,
    KEY_PATTERN,
    MAX_KEY_LENGTH,
    REPLAYED_HEADER,
    WITHOUT_IDEMPOTENCY_KEY,
    document_key,
    fingerprint,
    new_key,
    parse_key,
)
from citypair_shared.problems import PROBLEM_JSON, Problem


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ('"8e03978e-40d5-43e8-bc93-6894a57f9324"', "8e03978e-40d5-43e8-bc93-6894a57f9324"),  # the draft's sf-string
        ("8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"),  # bare, as many send it
        (r'"say \"hi\" \\ bye"', 'say "hi" \\ bye'),
        ("k" * MAX_KEY_LENGTH, "k" * MAX_KEY_LENGTH),
        (" padded ", "padded"),
    ],
)
def test_a_key_is_read_quoted_or_bare(value, key):
    assert parse_key([value]) == key


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([""], "must not be empty"),
        (['""'], "must not be empty"),
        (["k" * (MAX_KEY_LENGTH + 1)], f"at most {MAX_KEY_LENGTH}"),
        (["clé"], "printable ASCII"),
        (["tab\there"], "printable ASCII"),
        (["one", "two"], "send one"),
    ],
)
def test_a_bad_key_is_a_422_naming_the_header(values, message):
    with pytest.raises(Problem) as raised:
        parse_key(values)
    problem = raised.value
    assert problem.status == 422
    assert problem.extra["errors"][0]["field"] == FIELD == "header.Idempotency-Key"
    assert message in problem.extra["errors"][0]["message"]


def test_new_keys_are_fresh_sf_strings_of_a_uuid():
    first, second = new_key(), new_key()
    assert first != second
    assert first.startswith('"') and first.endswith('"') and len(parse_key([first])) == 36


def test_the_fingerprint_tells_method_path_query_and_body_apart():
    base = fingerprint("POST", "/api/v1/cities", "", b'{"name": "Almaty"}')
    assert base == fingerprint("POST", "/api/v1/cities", "", b'{"name": "Almaty"}')
    others = {
        fingerprint("PUT", "/api/v1/cities", "", b'{"name": "Almaty"}'),
        fingerprint("POST", "/api/v1/cities/import", "", b'{"name": "Almaty"}'),
        fingerprint("POST", "/api/v1/cities", "all_or_nothing=true", b'{"name": "Almaty"}'),
        fingerprint("POST", "/api/v1/cities", "", b'{"name": "Astana"}'),
        # the same bytes split differently between the parts
        fingerprint("POST", "/api/v1/citie", "s", b'{"name": "Almaty"}'),
    }
    assert base not in others and len(others) == 5


def _operation(**extra) -> dict:
    return {"responses": {"201": {"description": "Created"}, "409": {"description": "Email taken"}}, **extra}


def test_the_openapi_documents_the_header_on_each_post_taking_a_key():
    schema = {
        "paths": {
            "/users": {"post": _operation(), "get": {"responses": {"200": {"description": "OK"}}}},
            "/auth/token": {"post": _operation(**WITHOUT_IDEMPOTENCY_KEY)},
        }
    }
    document_key(schema)
    users = schema["paths"]["/users"]["post"]
    assert [p["name"] for p in users["parameters"]] == [HEADER]
    assert users["parameters"][0]["schema"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": KEY_PATTERN,
    }
    assert REPLAYED_HEADER in users["responses"]["201"]["headers"]
    assert users["responses"]["409"]["description"].startswith("Email taken; or ")
    assert "422" in users["responses"]
    assert "parameters" not in schema["paths"]["/users"]["get"]
    token = schema["paths"]["/auth/token"]["post"]
    assert "parameters" not in token and "422" not in token
    assert not any(name.startswith("x-") for name in token), "the marker is not published"


# --- the clients send a key, the same on their retries -----------------------------------------------------


def _recorder(*answers: httpx.Response | Exception):
    """A transport that records each request and answers with the next of `answers`."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle), seen


def test_the_cli_retries_a_post_with_the_same_key(monkeypatch):
    monkeypatch.setattr(cli.time, "sleep", lambda _: None)
    monkeypatch.setattr(cli, "POST_ATTEMPTS", 4)
    in_progress = httpx.Response(409, headers={"Content-Type": PROBLEM_JSON}, json={"type": IN_PROGRESS_TYPE})
    transport, seen = _recorder(httpx.ConnectError("reset"), httpx.Response(503), in_progress, httpx.Response(200))
    with httpx.Client(transport=transport, base_url="http://gateway") as client:
        response = cli._post(client, "/api/v1/cities/import", content=b"[]", headers={"Content-Type": "text/csv"})
    assert response.status_code == 200
    keys = {request.headers[HEADER] for request in seen}
    assert len(seen) == 4 and len(keys) == 1 and parse_key(list(keys))
    assert all(request.headers["content-type"] == "text/csv" for request in seen)
    # The next logical request gets a key of its own.
    transport, again = _recorder(httpx.Response(200))
    with httpx.Client(transport=transport, base_url="http://gateway") as client:
        cli._post(client, "/api/v1/cities/import", content=b"[]", headers={})
    assert again[0].headers[HEADER] not in keys
