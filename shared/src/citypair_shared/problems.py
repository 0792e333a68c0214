"""RFC 9457 problem+json for every error a service returns."""

import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from citypair_shared.logging import get_logger

log = get_logger(__name__)
PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    """One wrong field of a request."""

    field: str = Field(description="Where, e.g. `themes.ai.offer` (body) or `query.limit`")
    message: str
    type: str = Field(
        "", description="A machine-readable kind: the schema check's (`missing`, …) or the service rule's code"
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="The values the message names, by their names in its `type` (e.g. `value`)"
    )


class ProblemDetails(BaseModel):
    """RFC 9457 problem details: the body of every error response (`application/problem+json`)."""

    model_config = ConfigDict(extra="allow")  # e.g. `required_roles`, `allowed`, `existing_id`

    type: str = Field("about:blank", description="A URI reference naming the kind of problem")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str = ""
    instance: str = Field("", description="The path of the request")
    errors: list[FieldError] = Field(default_factory=list, description="Validation failures: each wrong field")


# Headers some problems carry.
_PROBLEM_HEADERS = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}},
}


DESCRIPTIONS = {
    401: "Not signed in: no access token, or it is malformed, expired or revoked",
    403: "Signed in, but not allowed to do this",
    404: "No such resource",
    409: "Conflicts with the current state",
    412: "Precondition failed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input: `errors` names each wrong field",
    429: "Too many attempts: see Retry-After",
}


def problem_responses(*statuses: int, described: Mapping[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status (described as in DESCRIPTIONS, or by `described`) as problem+json."""
    descriptions = {**{status: DESCRIPTIONS[status] for status in statuses}, **(described or {})}
    schema = {"$ref": "#/components/schemas/ProblemDetails"}
    return {
        status: {
            "description": description,
            "content": {PROBLEM_JSON: {"schema": schema}},
            **({"headers": _PROBLEM_HEADERS[status]} if status in _PROBLEM_HEADERS else {}),
        }
        for status, description in sorted(descriptions.items())
    }


def problem_schemas() -> dict[str, Any]:
    """The component schemas `problem_responses` refers to (`build_app` adds them to every service's doc)."""
    schema = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {**defs, "ProblemDetails": schema}


class Problem(Exception):
    """An error the caller can act on: raised by services, rendered as problem+json."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.type, self.extra = status, title, detail, type_, extra
        self.headers = headers or {}


def not_found(what: str, ident: str) -> Problem:
    return Problem(404, "Not found", f"{what} {ident!r} does not exist", type_="/problems/not-found")


def rule_error(field: str, message: str, *, code: str | None = None, **params: Any) -> dict[str, Any]:
    """A field's error found by a rule (not the schema): `code` names the rule and `params` the values `message`
    names, so a client can say it in another language (as for a schema check)."""
    return {
        "field": field,
        "message": message,
        **({"type": code} if code else {}),
        **({"params": params} if params else {}),
    }


def invalid(field: str, message: str, *, code: str | None = None, **params: Any) -> Problem:
    """A 422 for one field that passed the schema but breaks a rule (e.g. an unknown city): see `rule_error`."""
    error = rule_error(field, message, code=code, **params)
    return Problem(422, "Validation failed", f"{field}: {message}", type_="/problems/validation", errors=[error])


def problem_response(status: int, title: str, detail: str = "", type_: str = "about:blank", **extra) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, **({"detail": detail} if detail else {}), **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _field(loc: tuple) -> str:
    # ("body", "themes", "ai", "offer") -> "themes.ai.offer"; query/path keep their origin.
    parts = [str(p) for p in loc]
    return ".".join(parts[1:] if parts and parts[0] == "body" and len(parts) > 1 else parts)


def _json_safe(value: Any) -> Any:
    """`value` if JSON carries it as it is (scalars, lists of them), else None (e.g. the exception in `ctx.error`)."""
    if isinstance(value, str | bool | int) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        items = [_json_safe(item) for item in value]
        return items if all(item is not None for item in items) else None
    return None


def field_error(e: Mapping[str, Any]) -> dict[str, Any]:
    """One of pydantic's errors as a problem's: the values its message names (`ctx`) as `params`."""
    params = {name: safe for name, value in (e.get("ctx") or {}).items() if (safe := _json_safe(value)) is not None}
    return {"field": _field(e["loc"]), "message": e["msg"], "type": e["type"], **({"params": params} if params else {})}


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        response = problem_response(exc.status, exc.title, exc.detail, exc.type, instance=request.url.path, **exc.extra)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [field_error(e) for e in exc.errors()]
        fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
        return problem_response(
            422,
            "Validation failed",
            f"invalid: {fields}",
            "/problems/validation",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        response = problem_response(exc.status_code, str(exc.detail), instance=request.url.path)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(StaleDataError)
    async def _contended(request: Request, exc: StaleDataError):
        # Only after every retry of `retry_on_conflict` lost: nothing was written.
        log.warning("request.contended", path=request.url.path)
        return problem_response(
            409, "Conflict", "others changed this at the same moment; nothing was saved, try again",
            "/problems/conflict", instance=request.url.path,
        )  # fmt: skip

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("request.unhandled", path=request.url.path)
        return problem_response(500, "Internal error", "the error was logged", instance=request.url.path)
