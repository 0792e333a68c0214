"""The gateway's OpenAPI: every service's public paths in one document.

Each service app is built with its default settings (no lifespan runs: `app.openapi()` needs
none) and the paths the gateway serves (`/api/v1/…`, `/.well-known/…`) are merged with their
component schemas. `citypair openapi --output docs/openapi.json` writes it; the gateway serves
that file at `/api/v1/openapi.json`, and a contract test keeps it equal to a fresh build.
"""

import copy
import importlib
from typing import Any

from citypair_cli.links import add_links
from citypair_shared.problems import PROBLEM_JSON
from citypair_shared.services import SERVICES

TITLE = "citypair API (gateway)"
VERSION = "0.1.0"
PUBLIC_PREFIXES = ("/api/v1/", "/.well-known/")
BEARER_SCHEME = "HTTPBearer"  # the name FastAPI's HTTPBearer gives it in every operation's `security`
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PROBLEM_SCHEMA = {"$ref": "#/components/schemas/ProblemDetails"}
# What the gateway itself may answer for any API path (deploy/Caddyfile).
GATEWAY_RESPONSES = {
    "503": {
        "description": (
            "The service behind this path did not answer (from the gateway). A write may or may not have been "
            "applied: retry a POST with the same Idempotency-Key; read again before retrying a PUT or PATCH"
        ),
        "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
    }
}
BODY_TOO_LARGE = {
    "413": {
        "description": "Request body above the gateway's limit (CITYPAIR_GATEWAY_MAX_BODY, 2MB by default)",
        "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
    }
}


class OpenAPIMergeError(RuntimeError):
    """Two services' documents disagree (a path, operation id, schema or security scheme)."""


def service_openapi(package: str) -> dict[str, Any]:
    """One service's OpenAPI document, from its app built with default settings."""
    create_app = importlib.import_module(f"{package}.main").create_app
    return copy.deepcopy(create_app().openapi())


def _merge(kind: str, into: dict[str, Any], name: str, value: Any, owner: str, owners: dict[str, str]) -> None:
    if name in into and into[name] != value:
        raise OpenAPIMergeError(f"{kind} {name!r}: {owners[name]} and {owner} define it differently")
    into[name] = value
    owners.setdefault(name, owner)


def build_gateway_openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of everything the gateway serves under /api/v1/ and /.well-known/."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    schemes: dict[str, Any] = {}
    owners: dict[str, dict[str, str]] = {"path": {}, "schema": {}, "scheme": {}, "operation": {}}
    for spec in SERVICES:
        doc = service_openapi(spec.package)
        for path, item in doc.get("paths", {}).items():
            if not path.startswith(PUBLIC_PREFIXES):
                continue  # /healthz, /readyz, /metrics, /openapi.json and web's pages are not the API
            if path in paths:
                raise OpenAPIMergeError(f"path {path!r}: served by both {owners['path'][path]} and {spec.name}")
            paths[path] = item
            owners["path"][path] = spec.name
            for method in METHODS:
                if (operation := item.get(method)) is None:
                    continue
                if (op_id := operation.get("operationId")) in owners["operation"]:
                    raise OpenAPIMergeError(f"operationId {op_id!r}: {owners['operation'][op_id]} and {spec.name}")
                owners["operation"][op_id] = spec.name
                responses = operation.setdefault("responses", {})
                extra = {**GATEWAY_RESPONSES, **(BODY_TOO_LARGE if "requestBody" in operation else {})}
                for status, response in extra.items():
                    responses.setdefault(status, copy.deepcopy(response))
        components = doc.get("components", {})
        for name, schema in components.get("schemas", {}).items():
            _merge("schema", schemas, name, schema, spec.name, owners["schema"])
        for name, scheme in components.get("securitySchemes", {}).items():
            _merge("security scheme", schemes, name, scheme, spec.name, owners["scheme"])
    if BEARER_SCHEME not in schemes:
        raise OpenAPIMergeError(f"no service declares the {BEARER_SCHEME} security scheme")
    # Access tokens are EdDSA-signed JWTs from POST /api/v1/auth/token (checked by every service itself).
    schemes[BEARER_SCHEME] = {**schemes[BEARER_SCHEME], "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": (
                "Every public API of citypair, as the Caddy gateway serves it. Errors are RFC 9457 "
                "`application/problem+json`. Operations that list the `HTTPBearer` security scheme need "
                "`Authorization: Bearer <access token>` (a JWT from `POST /api/v1/auth/token`)."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items())), "securitySchemes": schemes},
    }
    add_links(document)
    return document
