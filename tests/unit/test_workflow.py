"""The pilot-zone workflow table."""

import pytest

from citypair_pilot_zones.workflow import ALLOWED, OPEN, Status, allowed_from, can_move

HAPPY_PATH = ["draft", "submitted", "under_review", "approved", "active", "completed"]


def test_happy_path_is_allowed_step_by_step():
    for current, target in zip(HAPPY_PATH, HAPPY_PATH[1:], strict=False):
        assert can_move(Status(current), Status(target))


@pytest.mark.parametrize("status", list(Status))
def test_every_state_is_reachable_from_draft(status):
    seen, frontier = {Status.draft}, [Status.draft]
    while frontier:
        for nxt in ALLOWED[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert status in seen


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("draft", "approved"),
        ("submitted", "approved"),
        ("approved", "withdrawn"),
        ("rejected", "submitted"),
        ("completed", "active"),
        ("withdrawn", "draft"),
        ("changes_requested", "approved"),
    ],
)
def test_forbidden_moves(current, target):
    assert not can_move(Status(current), Status(target))
    assert target not in allowed_from(Status(current))


def test_changes_requested_goes_back_to_the_proposer_then_submitted_again():
    assert can_move(Status.under_review, Status.changes_requested)
    assert allowed_from(Status.changes_requested) == ["submitted", "withdrawn"]


def test_open_means_undecided():
    assert {Status.draft, Status.submitted, Status.under_review, Status.changes_requested} == OPEN
