"""Optimistic concurrency over HTTP: a resource's version as its `ETag`, a stale `If-Match` as 412."""

from typing import Annotated

from fastapi import Header, Response

from citypair_shared.problems import Problem

IfMatch = Annotated[str | None, Header(max_length=100, description="The ETag you read; 412 if it is stale")]


def etag(version: int) -> str:
    """The strong ETag of a resource at `version`."""
    return f'"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


def check_if_match(*, version: int, if_match: str | None, what: str) -> None:
    """412 unless `if_match` names `version` (or `*`); no header means the client does not ask, so it passes.

    `what` names the resource in the message ("profile", "proposal").
    """
    if if_match is not None and if_match.strip() not in (etag(version), "*"):
        raise Problem(
            412,
            "Precondition failed",
            f"the {what} changed since you read it (now version {version}); reload and try again",
            type_="/problems/stale",
            current_version=version,
        )
