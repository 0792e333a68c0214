"""What the service frame costs a request, in-process (a script, not a test).

    .venv/bin/python tests/bench/request_layers.py [--requests 3000] [--runs 3]

Calls one trivial route (`GET /x` answering `{"a": 1}`) straight through ASGI, no server and no network: on a
bare FastAPI app (the baseline) and on `build_app`'s (request id, metrics, problem handlers, the input guards; the
access log at WARNING, so its lines are not written), by turns. Prints each one's mean time a request (the best of
the runs) and the difference: what every request of every service pays for the frame.
"""

import argparse
import asyncio
import time

from fastapi import APIRouter, FastAPI

from citypair_shared.app import build_app
from citypair_shared.runtime import Runtime
from citypair_shared.settings import ServiceSettings


class NoDatabase(ServiceSettings):
    has_database = False


def router() -> APIRouter:
    routes = APIRouter()

    @routes.get("/x")
    async def x() -> dict[str, int]:
        return {"a": 1}

    return routes


def bare() -> FastAPI:
    app = FastAPI()
    app.include_router(router())
    return app


async def mean_us(app, requests: int) -> float:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/x", "raw_path": b"/x", "query_string": b"", "headers": [(b"host", b"bench")],
             "client": ("127.0.0.1", 1), "server": ("bench", 80), "root_path": ""}  # fmt: skip

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    for _ in range(200):  # warm-up
        await app(dict(scope), receive, send)
    start = time.perf_counter()
    for _ in range(requests):
        await app(dict(scope), receive, send)
    return (time.perf_counter() - start) / requests * 1e6


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    apps = {
        "bare FastAPI": bare(),
        "build_app": build_app(title="bench", runtime=Runtime(NoDatabase(log_level="WARNING")), routers=[router()]),
    }
    best = {name: min(asyncio.run(mean_us(app, args.requests)) for _ in range(args.runs)) for name, app in apps.items()}
    for name, us in best.items():
        print(f"{name}: {us:.1f} µs a request")
    print(f"the frame: +{best['build_app'] - best['bare FastAPI']:.1f} µs a request")
