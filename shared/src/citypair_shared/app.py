"""The FastAPI app every service is built on: request ids, problem+json, Idempotency-Key, health, metrics, lifespan."""

import gc
from collections.abc import Iterable
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from starlette.responses import JSONResponse

from citypair_shared.contract import forbid_nul_in_inputs, method_not_allowed, name_body_schemas, operation_id
from citypair_shared.deps import reject_nul
from citypair_shared.idempotency import Answered, answered, document_key
from citypair_shared.logging import configure_logging
from citypair_shared.metrics import metrics_response
from citypair_shared.middleware import KeyedResponses, RequestContext
from citypair_shared.problems import install_problem_handlers, problem_responses, problem_schemas
from citypair_shared.runtime import Runtime
from citypair_shared.strict_json import reject_bad_json
from citypair_shared.tracing import configure_tracing, instrument_app

UNREADABLE_BODY = problem_responses(described={400: "The body cannot be parsed (e.g. it is not UTF-8)"})[400]


def settle_heap() -> None:
    """Keep the collector off what start-up loaded: the modules, the data files and the caches live as long as the
    process, yet every full collection walked them all. In the profiles service that walk was most of a directory
    request's time (py-spy: gc_collect_main in ~2/3 of its samples) and its p99 spikes; frozen objects are never
    scanned, and a larger first generation collects less often while a request builds its few thousand objects."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def build_app(*, title: str, runtime: Runtime, routers: Iterable[APIRouter], version: str = "0.1.0") -> FastAPI:
    """A service app: the routers given, plus /healthz, /readyz and /metrics."""
    settings = runtime.settings
    configure_logging(service=settings.service_name, level=settings.log_level, json=settings.log_json)
    traced = configure_tracing(service=settings.service_name, endpoint=settings.otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.start()
        settle_heap()
        try:
            yield
        finally:
            await runtime.stop()

    guards = [Depends(reject_nul), Depends(reject_bad_json)]  # every input, before any route code runs
    app = FastAPI(
        title=title, version=version, lifespan=lifespan, dependencies=guards, generate_unique_id_function=operation_id
    )
    app.state.runtime = runtime
    install_problem_handlers(app)
    app.add_exception_handler(Answered, answered)  # a retry, answered from its key's record
    app.add_exception_handler(405, method_not_allowed)
    # Added first, so it runs inside `RequestContext`: every answer gets a request id, and errors become problems there.
    app.add_middleware(KeyedResponses)
    app.add_middleware(RequestContext)

    @app.get("/healthz", tags=["ops"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="Every dependency answers", responses={503: {"description": "Not ready"}})
    async def readyz():
        checks = await runtime.readiness()
        ready = all(v == "ok" for v in checks.values())
        body = {"service": settings.service_name, "status": "ok" if ready else "unavailable", "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics():
        return metrics_response()

    for router in routers:
        app.include_router(router)

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            # Error responses refer to the problem+json schemas (`problem_responses`): add them.
            schema.setdefault("components", {}).setdefault("schemas", {}).update(problem_schemas())
            # A body that cannot be read (e.g. not UTF-8) is refused before any route runs.
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    if "requestBody" in operation:
                        operation["responses"].setdefault("400", UNREADABLE_BODY)
            if runtime.idempotency_model is not None:
                document_key(schema)
            name_body_schemas(schema)
            forbid_nul_in_inputs(schema)
        return app.openapi_schema

    app.openapi = openapi
    if traced:
        instrument_app(app)
    return app
