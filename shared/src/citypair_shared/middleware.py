"""The two layers around every service's routes, as plain ASGI (Starlette's `BaseHTTPMiddleware` ran each request
in a task of its own with a stream between them: ~110 µs a layer and request, measured in-process).

`RequestContext`, outermost: the request id (from `X-Request-ID`, else new; in the logging context, and sent back),
the request's metrics and access-log line, and an unexpected error answered as the 500 problem, not re-raised:
re-raised, uvicorn would drop the keep-alive connection, and the gateway's next request on it would fail too (a 503).
An error after the answer has begun (a streamed export) can only cut the connection: it is re-raised, and the
metrics and the access log count it as a 500, not as the status already sent.

`KeyedResponses`: for a request that carries an `Idempotency-Key` and claimed it, the answer is held until
`idempotency.after_answer` has stored it (or replaced by a twin's); the others pass straight through.
"""

import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citypair_shared import idempotency
from citypair_shared.logging import get_logger, request_id_var
from citypair_shared.metrics import record_request
from citypair_shared.problems import problem_response

log = get_logger(__name__)
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()
_KEY = idempotency.HEADER.lower().encode()


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _header(scope, _KEY) is None:
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})
        held: list[Message] = []  # the answer of a request that claimed its key, until its record is kept

        async def hold(message: Message) -> None:
            if held or (message["type"] == "http.response.start" and state.get(idempotency.CLAIM) is not None):
                held.append(message)
            else:
                await send(message)

        request = Request(scope)
        try:
            await self.app(scope, receive, hold)
        except Exception:
            if (answer := await idempotency.after_failure(request, state.get(idempotency.CLAIM))) is None:
                raise
        else:
            answer = await idempotency.after_answer(request, state.get(idempotency.CLAIM), held)
        if answer is not None:
            return await answer(scope, receive, send)
        for message in held:
            await send(message)
