"""The two layers around every service's routes, as plain ASGI (Starlette's `BaseHTTPMiddleware` ran each request
in a task of its own with a stream between them: ~110 µs a layer and request, measured in-process).

`RequestContext`, outermost: the request id (from `X-Request-ID`, else new; in the logging context, and sent back),
the request's metrics and access-log line, and an unexpected error answered as the 500 problem, not re-raised:
re-raised, uvicorn would drop the keep-alive connection, and the gateway's next request on it would fail too (a 503).
An error after the answer has begun (a streamed export) can only cut the connection: it is re-raised, and the
metrics and the access log count it as a 500, not as the status already sent.

`KeyedResponses`: `idempotency.keep_first_response` for the requests that carry an `Idempotency-Key`; the others
pass straight through.
"""

import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citypair_shared.idempotency import HEADER as IDEMPOTENCY_KEY
from citypair_shared.idempotency import keep_first_response
from citypair_shared.logging import get_logger, request_id_var
from citypair_shared.metrics import record_request
from citypair_shared.problems import problem_response

log = get_logger(__name__)
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()
_KEY = IDEMPOTENCY_KEY.lower().encode()


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((value for key, value in scope["headers"] if key == name), None)


class RequestContext:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = _header(scope, _REQUEST_ID)
        request_id = (given.decode("latin-1") if given else str(uuid.uuid4()))[:100]
        token = request_id_var.set(request_id)
        status: int | None = None
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("request.unhandled", path=scope["path"])
            if status is not None:
                status = 500  # counted and logged as failed: the client got an answer cut short, not the status sent
                raise  # the answer has begun: nothing else can be said on this connection
            answer = problem_response(500, "Internal error", "the error was logged", instance=scope["path"])
            await answer(scope, receive, send_with_id)
        finally:
            record_request(scope, status or 500, time.perf_counter() - start)
            request_id_var.reset(token)


class KeyedResponses:
    def __init__(self, app: ASGIApp):
        self.app = app
        self.keyed = BaseHTTPMiddleware(app, dispatch=keep_first_response)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        keyed = scope["type"] == "http" and _header(scope, _KEY) is not None
        await (self.keyed if keyed else self.app)(scope, receive, send)
