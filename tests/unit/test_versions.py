"""The shared ETag / If-Match check every versioned write goes through (profiles, pilot zones)."""

import pytest
from starlette.responses import Response

from citypair_shared.problems import Problem
from citypair_shared.versions import check_if_match, set_etag


@pytest.mark.parametrize("if_match", [None, '"3"', ' "3" ', "*"])
def test_the_version_read_no_header_or_any_passes(if_match):
    check_if_match(version=3, if_match=if_match, what="profile")


@pytest.mark.parametrize("if_match", ['"2"', "3", 'W/"3"', ""])
def test_anything_else_is_412_naming_the_resource_and_its_version(if_match):
    with pytest.raises(Problem) as caught:
        check_if_match(version=3, if_match=if_match, what="proposal")
    problem = caught.value
    assert (problem.status, problem.title, problem.type) == (412, "Precondition failed", "/problems/stale")
    assert problem.detail == "the proposal changed since you read it (now version 3); reload and try again"
    assert problem.extra == {"current_version": 3}


def test_the_etag_set_is_the_one_if_match_takes():
    response = Response()
    set_etag(response, 7)
    assert response.headers["ETag"] == '"7"'
    check_if_match(version=7, if_match=response.headers["ETag"], what="profile")
