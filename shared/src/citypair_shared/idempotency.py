"""`Idempotency-Key` (IETF httpapi draft): a retried POST gets its first response back and is never applied twice.

A request that carries a key claims it as its caller (`claim_key`, which the request's session depends on):
the claim row is inserted by that session right before its first commit, so it commits with the effect or
not at all, and a crash right after commit cannot lose it. The response is stored on the row afterwards, before
it is sent (`after_answer`, which `middleware.KeyedResponses` calls). A retry with the same key and the same
request (method, path, query, body) within 24 h is answered with that response; the same key with another
request is 422; a retry while the first is still running waits up to 3 s for its response, else 409. Two
identical requests at once both run, but the unique (scope, key) lets only one commit: the other's effect rolls
back and it answers with the winner's response. Records are deleted once past the 24 h window: on lookup, and
hourly (citypair_shared.retention).
"""

import asyncio
import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from sqlalchemy import JSON, Integer, String, Text, delete, event, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Message

from citypair_shared.db import UtcDateTime
from citypair_shared.logging import get_logger
from citypair_shared.problems import Problem, invalid, problem_response, problem_responses

log = get_logger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
FIELD = f"header.{HEADER}"
MAX_KEY_LENGTH = 255
KEPT_FOR = timedelta(hours=24)
# How long a retry waits for a running first request's response before answering 409.
WAIT_FOR_FIRST_SECONDS = 3.0
POLL_SECONDS = 0.05
# A claim is written at commit, when only the response is left to make: one still without a response
# this long after is from a process that died in between (its response will never come).
RESPONSE_EXPECTED_WITHIN = timedelta(seconds=60)
# What a replay repeats besides status and body (not e.g. X-Request-ID: that is the retry's own).
KEPT_HEADERS = ("content-type", "location", "etag", "content-disposition")
ANONYMOUS = "anonymous"
IN_PROGRESS_TYPE = "/problems/idempotency-in-progress"
RESPONSE_LOST_TYPE = "/problems/idempotency-response-lost"


class IdempotencyMixin:
    """Columns of a service's `idempotency_record` table: one row per (caller, key), kept 24 h."""

    scope: Mapped[str] = mapped_column(String(36), primary_key=True)  # the caller's user id, or "anonymous"
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    # Null until the response is stored; a status without a body: applied, but the response was not kept (5xx).
    status_code: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


# --- the request: key, fingerprint, caller -------------------------------------------------------------


def parse_key(values: list[str]) -> str:
    """The key the `Idempotency-Key` field carries: an sf-string (`"…"`, as the draft writes it) or bare.

    Raises a 422 `Problem` naming the header if it is repeated, empty, too long or not printable ASCII.
    """
    if len(values) != 1:
        raise invalid(FIELD, "send one Idempotency-Key", code="idempotency_key_repeated")
    key = values[0].strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not key:
        raise invalid(FIELD, "must not be empty", code="idempotency_key_empty")
    if len(key) > MAX_KEY_LENGTH:
        raise invalid(
            FIELD,
            f"must be at most {MAX_KEY_LENGTH} characters",
            code="idempotency_key_too_long",
            max_length=MAX_KEY_LENGTH,
        )
    if not all(" " <= char <= "~" for char in key):
        raise invalid(FIELD, "must be printable ASCII (a UUID is best)", code="idempotency_key_not_ascii")
    return key


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """SHA-256 of what makes two requests the same one: method, path, query and body."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode()):
        digest.update(len(part).to_bytes(8, "big") + part)  # length-prefixed: no two splits hash alike
    digest.update(body)
    return digest.hexdigest()


def new_key() -> str:
    """A fresh `Idempotency-Key` value for a client to send (and send again on its retries of that request)."""
    return f'"{uuid.uuid4()}"'


async def _caller(request: Request) -> str | None:
    """Whose key this is: the verified caller's user id, "anonymous" without a token, None if the token fails."""
    authorization = request.headers.get("authorization")
    if authorization is None:
        return ANONYMOUS
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    try:
        principal = await request.app.state.runtime.verifier.verify(token.strip())
    except Problem:
        return None
    return principal.user_id


# --- which routes take a key --------------------------------------------------------------------------

_WITHOUT_KEY = "x-without-idempotency-key"
WITHOUT_IDEMPOTENCY_KEY = {_WITHOUT_KEY: True}
"""`openapi_extra=` for a POST that ignores `Idempotency-Key`: one whose answer must never be stored (tokens),
or that is harmless to repeat."""


def _takes_key(route) -> bool:
    return isinstance(route, APIRoute) and "POST" in route.methods and not (route.openapi_extra or {}).get(_WITHOUT_KEY)


# --- the claim, written with the effect ----------------------------------------------------------------


@dataclass
class Claim:
    """This request's claim on (scope, key): inserted by its session right before its first commit."""

    model: type
    scope: str
    key: str
    fingerprint: str
    committed: bool = False

    def attach(self, session: AsyncSession) -> None:
        """Make `session` (the request's) write the claim in the transaction of its first commit."""
        event.listen(session.sync_session, "before_commit", self._insert)
        event.listen(session.sync_session, "after_commit", self._mark_committed)

    def _insert(self, session: Session) -> None:
        if self.committed:
            return
        # The effect's own writes first, so the claim is the last statement before COMMIT: on PostgreSQL a
        # concurrent twin then waits on it holding nothing this transaction still needs.
        session.flush()
        values = {"scope": self.scope, "key": self.key, "fingerprint": self.fingerprint}
        session.execute(insert(self.model).values(**values, headers={}, created_at=datetime.now(UTC)))

    def _mark_committed(self, session: Session) -> None:
        self.committed = True


# --- the records ---------------------------------------------------------------------------------------


@dataclass
class Records:
    """The records of one service's keys. Each read or write is one statement, so it runs without a transaction
    of its own (autocommit): one round trip, not three (begin, the statement, commit or rollback)."""

    engine: AsyncEngine
    model: type

    @classmethod
    def of(cls, request: Request) -> "Records":
        runtime = request.app.state.runtime
        return cls(runtime.autocommit_engine, runtime.idempotency_model)

    def _this(self, scope: str, key: str):
        return (self.model.scope == scope, self.model.key == key)

    async def find(self, scope: str, key: str):
        """The live record of (scope, key), or None; one past the 24 h window is deleted (its key is free again)."""
        expired = datetime.now(UTC) - KEPT_FOR
        async with self.engine.connect() as connection:
            record = (await connection.execute(select(self.model.__table__).where(*self._this(scope, key)))).first()
            if record is not None and record.created_at < expired:
                # Only while still expired: another request may have deleted it and claimed the key afresh.
                this_expired = (*self._this(scope, key), self.model.created_at < expired)
                await connection.execute(delete(self.model).where(*this_expired))
                return None
            return record

    async def keep(self, claim: Claim, status_code: int, headers: dict[str, str], body: str | None) -> None:
        """Store the response on the committed claim."""
        try:
            async with self.engine.connect() as connection:
                values = {"status_code": status_code, "headers": headers, "body": body}
                await connection.execute(update(self.model).where(*self._this(claim.scope, claim.key)).values(values))
        except Exception as exc:  # the answer still goes out; a retry is told the response was not kept
            log.warning("idempotency.response_not_kept", key=claim.key, error=repr(exc))


# --- the dependency: answer a retry, or claim the key ---------------------------------------------------


class Answered(Exception):
    """A retry answered from the record of its key (`build_app` has `answered` render it)."""

    def __init__(self, response: Response):
        super().__init__("answered from the Idempotency-Key record")
        self.response = response


async def answered(request: Request, exc: Answered) -> Response:
    return exc.response


async def claim_key(request: Request) -> Claim | None:
    """A dependency: for a POST that carries a key, answer a retry from its record, or claim the key."""
    runtime = request.app.state.runtime
    if (
        HEADER.lower() not in request.headers
        or runtime.idempotency_model is None
        or not _takes_key(request.scope.get("route"))
    ):
        return None
    key = parse_key(request.headers.getlist(HEADER))
    scope = await _caller(request)
    if scope is None:
        return None  # never trust an unverified token: the route answers 401
    body = await request.body()
    claim = Claim(
        runtime.idempotency_model, scope, key, fingerprint(request.method, request.url.path, request.url.query, body)
    )
    records = Records.of(request)
    if (record := await records.find(scope, key)) is not None:
        raise Answered(await _answer_retry(request, claim, record, records))
    setattr(request.state, CLAIM, claim)
    return claim


# --- the middleware ------------------------------------------------------------------------------------


CLAIM = "idempotency_claim"  # where `claim_key` leaves the request's claim: its state (the ASGI scope's "state")


async def after_failure(request: Request, claim: Claim | None) -> Response | None:
    """The route raised. If it had committed its claim, a retry hears at once that the request was applied (the
    error still answers this one); if not, a twin that committed answers it. None: the error stands."""
    if claim is None:
        return None
    if claim.committed:
        await Records.of(request).keep(claim, 500, {}, None)
        return None
    return await _answer_for_twin(request, claim)


async def after_answer(request: Request, claim: Claim | None, answer: list[Message]) -> Response | None:
    """The route answered (`answer`: its ASGI messages, held). Store the answer of a committed claim before it goes
    out, so a retry sent after it finds it; answer for a twin that won. None: send `answer` as it is."""
    if claim is None or not answer:
        return None
    if not claim.committed:
        return await _answer_for_twin(request, claim)
    status, headers = answer[0]["status"], Headers(raw=answer[0]["headers"])
    content = b"".join(message.get("body", b"") for message in answer[1:])
    kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
    # A 5xx is not an answer to repeat (the request was applied, though): a retry hears that instead.
    await Records.of(request).keep(claim, status, kept, _text(content) if status < 500 else None)
    return None


async def _answer_for_twin(request: Request, claim: Claim) -> Response | None:
    """Nothing of this request was committed. If a twin with the same key was (ours then failed on the key,
    or on its effect), answer as a retry would be answered; else None: this request's own answer stands."""
    records = Records.of(request)
    if (record := await records.find(claim.scope, claim.key)) is None:
        return None
    log.info("idempotency.lost_to_twin", key=claim.key, path=request.url.path)
    return await _answer_retry(request, claim, record, records)


def _text(content: bytes) -> str | None:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None


async def _answer_retry(request: Request, claim: Claim, record, records: Records) -> Response:
    if record.fingerprint != claim.fingerprint:
        message = "was used for a different request (method, path, query or body) in the last 24 h"
        return _problem(request, invalid(FIELD, message, code="idempotency_key_reused"))
    deadline = time.monotonic() + WAIT_FOR_FIRST_SECONDS
    while record.status_code is None and not _abandoned(record) and time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)
        record = await records.find(claim.scope, claim.key) or record
    if record.status_code is None and not _abandoned(record):
        detail = "a request with this Idempotency-Key is in progress; retry shortly with the same key"
        return _problem(request, Problem(409, "Request in progress", detail, type_=IN_PROGRESS_TYPE))
    if record.status_code is None or record.body is None:
        return _not_kept(request, record)
    headers = {**record.headers, REPLAYED_HEADER: "true"}
    return Response(record.body.encode("utf-8"), status_code=record.status_code, headers=headers)


def _abandoned(record) -> bool:
    return record.status_code is None and record.created_at < datetime.now(UTC) - RESPONSE_EXPECTED_WITHIN


def _not_kept(request: Request, record) -> Response:
    location = record.headers.get("location")
    detail = "the request with this Idempotency-Key was applied, but its response was not kept; " + (
        "read the resource at Location" if location else "read the resource to see its state"
    )
    problem = Problem(
        409,
        "Applied, response not kept",
        detail,
        type_=RESPONSE_LOST_TYPE,
        headers={"Location": location} if location else None,
    )
    return _problem(request, problem)


def _problem(request: Request, problem: Problem) -> Response:
    response = problem_response(
        problem.status, problem.title, problem.detail, problem.type, instance=request.url.path, **problem.extra
    )
    response.headers.update(problem.headers)
    return response


# --- the OpenAPI document ------------------------------------------------------------------------------

_CONFLICT = f"the request of this {HEADER} is in progress, or was applied but its response was not kept"
# What `parse_key` takes: printable ASCII, bare (not opening and closing with `"`) or as a non-empty sf-string.
KEY_PATTERN = r'^([!-~]|[!#-~][ -~]*[!-~]|"[ -~]*[!#-~]|"[ -~]+")$'


def document_key(schema: dict[str, Any]) -> None:
    """Add the `Idempotency-Key` header, its 409 and 422, and `Idempotent-Replayed` to each POST taking a key."""
    for item in schema.get("paths", {}).values():
        operation = item.get("post")
        if operation is None or operation.pop(_WITHOUT_KEY, False):
            continue
        operation.setdefault("parameters", []).append(
            {
                "name": HEADER,
                "in": "header",
                "required": False,
                "description": (
                    "A key of your choosing (a UUID), new for each request and the same on its retries: a retry "
                    f"within 24 h gets the first response again (with `{REPLAYED_HEADER}: true`) instead of "
                    "applying the request twice"
                ),
                "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": KEY_PATTERN},
            }
        )
        responses = operation["responses"]
        for status, response in responses.items():
            if status.startswith("2"):
                response.setdefault("headers", {})[REPLAYED_HEADER] = {
                    "description": f"`true`: the stored response of an earlier request with the same {HEADER}",
                    "schema": {"type": "string", "enum": ["true"]},
                }
        described = responses.get("409", {}).get("description")
        conflict = f"{described}; or {_CONFLICT}" if described else _CONFLICT[0].upper() + _CONFLICT[1:]
        problems = problem_responses(422, described={409: conflict})
        responses["409"] = problems[409]
        responses.setdefault("422", problems[422])
