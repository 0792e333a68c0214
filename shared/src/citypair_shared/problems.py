"""RFC 9457 problem+json for every error a service returns."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from citypair_shared.logging import get_logger

log = get_logger(__name__)
PROBLEM_JSON = "application/problem+json"


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


def invalid(field: str, message: str) -> Problem:
    """A 422 for one field that passed the schema but breaks a rule (e.g. an unknown city)."""
    return Problem(
        422,
        "Validation failed",
        f"{field}: {message}",
        type_="/problems/validation",
        errors=[{"field": field, "message": message}],
    )


def problem_response(status: int, title: str, detail: str = "", type_: str = "about:blank", **extra) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, **({"detail": detail} if detail else {}), **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _field(loc: tuple) -> str:
    # ("body", "themes", "ai", "offer") -> "themes.ai.offer"; query/path keep their origin.
    parts = [str(p) for p in loc]
    return ".".join(parts[1:] if parts and parts[0] == "body" and len(parts) > 1 else parts)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        response = problem_response(exc.status, exc.title, exc.detail, exc.type, instance=request.url.path, **exc.extra)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [{"field": _field(e["loc"]), "message": e["msg"], "type": e["type"]} for e in exc.errors()]
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

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("request.unhandled", path=request.url.path)
        return problem_response(500, "Internal error", "the error was logged", instance=request.url.path)
