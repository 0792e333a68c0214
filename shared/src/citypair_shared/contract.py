"""What a service's OpenAPI document says beyond FastAPI's defaults: what the API enforces, in names a client
generator can use.

- Every operation is named by its route function in camelCase (`register_city` → `registerCity`), not by its
  path and method; a body model FastAPI makes up is named after its operation (`SignInForm`).
- No text may hold U+0000 (`deps.reject_nul`, `strict_json`), so every input string says so with a pattern,
  and so does every input object that takes names beyond its properties (a form's other fields).
- Inputs take what their schema admits, and only that: `json_integer`, `CalendarDate`.
"""

import re
from datetime import date
from typing import Annotated, Any

from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BeforeValidator, Field, Strict
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from citypair_shared.problems import problem_response

NO_NUL_PATTERN = r"^[^\u0000]*$"
# Whitespace as pydantic's patterns and stripping mean it (Unicode's White_Space), spelled out: `\s` in a JSON
# Schema pattern is ECMA-262's, which leaves out U+0085 and adds U+FEFF, so the two would disagree on them.
WHITESPACE = r"\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# A text that is more than whitespace (models that strip it would find it empty), without U+0000.
VISIBLE_TEXT_PATTERN = rf"^[^\u0000]*[^{WHITESPACE}\u0000][^\u0000]*$"
EMAIL_PATTERN = rf"^[^@{WHITESPACE}\x00]+@[^@{WHITESPACE}\x00]+$"
URL_PATTERN = rf"^https?://[^{WHITESPACE}\x00]+$"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SCHEMA_REF = "#/components/schemas/"
# What already stops U+0000 in a string: a closed list of values, or a format whose values never hold it.
CONSTRAINED = ("pattern", "enum", "const", "format")
JSON_VALUE = "JsonValue"
# What an untyped input (`{}`, e.g. an import's rows, each checked on its own) takes: any JSON without U+0000.
JSON_VALUE_SCHEMA = {
    "description": "Any JSON value without the NUL character (U+0000), at any depth",
    "anyOf": [
        {"type": ["null", "boolean", "number"]},
        {"type": "string", "pattern": NO_NUL_PATTERN},
        {"type": "array", "items": {"$ref": SCHEMA_REF + JSON_VALUE}},
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL_PATTERN},
            "additionalProperties": {"$ref": SCHEMA_REF + JSON_VALUE},
        },
    ],
}


ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _whole_number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _date_text(value: Any) -> Any:
    if type(value) is date or (isinstance(value, str) and ISO_DATE.fullmatch(value)):
        return value
    raise PydanticCustomError("date_parsing", "a date is written YYYY-MM-DD")  # pydantic's kind, said as it says it


def json_integer(*, ge: int, le: int) -> Any:
    """JSON Schema's `integer` from `ge` to `le`: any number without a fraction (2.0 is 2, which StrictInt
    refuses), never text ("2") or a boolean. The bounds sit before the conversion, or `| None` would write them
    into the schema as unknown keywords."""
    return Annotated[int, Strict(), Field(ge=ge, le=le), BeforeValidator(_whole_number)]


# `format: date` is YYYY-MM-DD text; pydantic alone would also read 0, "86400" and a datetime as dates.
CalendarDate = Annotated[date, BeforeValidator(_date_text)]


def operation_id(route: APIRoute) -> str:
    """The operationId of a route: its function's name in camelCase (`build_app` gives this to FastAPI)."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def name_body_schemas(schema: dict[str, Any]) -> None:
    """Rename FastAPI's `Body_<operationId>` models to `<OperationId>Form` (a form) or `<OperationId>Body`."""
    schemas = schema.get("components", {}).get("schemas", {})
    renames = {}
    for operation in _operations(schema):
        for content_type, media in operation.get("requestBody", {}).get("content", {}).items():
            old = media.get("schema", {}).get("$ref", "").removeprefix(SCHEMA_REF)
            if old.startswith("Body_") and old in schemas:
                pascal = operation["operationId"][:1].upper() + operation["operationId"][1:]
                renames[old] = pascal + ("Form" if content_type in FORM_TYPES else "Body")
    for old, new in renames.items():
        schemas[new] = {**schemas.pop(old), "title": new}
    _rewrite_refs(schema, {SCHEMA_REF + old: SCHEMA_REF + new for old, new in renames.items()})


def forbid_nul_in_inputs(schema: dict[str, Any]) -> None:
    """Give every string a request may carry (parameters, bodies) a pattern without U+0000, unless it has one.

    A string that has a pattern already must exclude U+0000 itself (a contract test checks every one); untyped
    items and values (`{}`) become a `JsonValue`, which holds no U+0000 at any depth; a form's other fields are
    texts without it.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    seen: set[str] = set()
    for operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            _forbid_nul(parameter.get("schema", {}), components, seen)
        for content_type, media in operation.get("requestBody", {}).get("content", {}).items():
            if content_type in FORM_TYPES:
                _forbid_nul_in_other_fields(media.get("schema", {}), components)
            _forbid_nul(media.get("schema", {}), components, seen)
    if JSON_VALUE in seen:
        components[JSON_VALUE] = JSON_VALUE_SCHEMA


def _forbid_nul_in_other_fields(schema: dict[str, Any], components: dict[str, Any]) -> None:
    """A form takes fields beyond its properties (OAuth2's `scope`, …): texts, without U+0000 like the rest."""
    form = components.get(schema.get("$ref", "").removeprefix(SCHEMA_REF), schema)
    if form.get("additionalProperties", True) is True:
        form["additionalProperties"] = {"type": "string", "pattern": NO_NUL_PATTERN}


def _forbid_nul(node: Any, components: dict[str, Any], seen: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _forbid_nul(item, components, seen)
        return
    if not isinstance(node, dict):
        return
    if (ref := node.get("$ref", "")).startswith(SCHEMA_REF):
        name = ref.removeprefix(SCHEMA_REF)
        if name not in seen and name in components:
            seen.add(name)
            _forbid_nul(components[name], components, seen)
        return
    if node.get("type") == "string" and not any(key in node for key in CONSTRAINED):
        node["pattern"] = NO_NUL_PATTERN
    if node.get("type") == "object" and node.get("additionalProperties") is not False:
        node.setdefault("propertyNames", {"pattern": NO_NUL_PATTERN})
    for key in ("items", "additionalProperties"):
        if node.get(key) == {}:
            node[key] = {"$ref": SCHEMA_REF + JSON_VALUE}
            seen.add(JSON_VALUE)
    for key, value in node.items():
        if key not in ("examples", "default", "example", "const", "enum"):
            _forbid_nul(value, components, seen)


def _operations(schema: dict[str, Any]):
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                yield operation


def _rewrite_refs(node: Any, refs: dict[str, str]) -> None:
    if isinstance(node, dict):
        if node.get("$ref") in refs:
            node["$ref"] = refs[node["$ref"]]
        for value in node.values():
            _rewrite_refs(value, refs)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, refs)


async def method_not_allowed(request: Request, exc: StarletteHTTPException) -> Response:
    """405 with an `Allow` naming every method of the path (Starlette's names the first route's alone).

    The path is the most literal one matching, as OpenAPI reads a URL: `/cities/export` is that path, not
    `/cities/{city_id}` with the id `export`, so it takes GET alone.
    """
    # Each route of the included routers (the app's own routes hold a router each, which has no methods) whose
    # path matches; PARTIAL: the path matches, the method does not.
    matching = [
        route
        for route in iter_route_contexts(request.app.router.routes)
        if route.matches(request.scope)[0] != Match.NONE
    ]
    fewest = min((route.path_format.count("{") for route in matching), default=0)
    methods = {method for route in matching if route.path_format.count("{") == fewest for method in route.methods or ()}
    allow = ", ".join(sorted(methods))
    response = problem_response(405, "Method Not Allowed", f"this path takes {allow}", instance=request.url.path)
    response.headers["Allow"] = allow
    return response
