"""Pilot zones without I/O: input rules, staleness, who may move what, the CSV export."""

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from citypair_pilot_zones import service, tabular
from citypair_pilot_zones.schemas import ProposalCreate, ProposalUpdate
from citypair_pilot_zones.workflow import Status
from citypair_shared.auth import Principal

CITIES = ["city-a", "city-b"]
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
SIXTY_DAYS = timedelta(days=60)


def user(*roles: str, cities=(), user_id="u-1") -> Principal:
    return Principal(user_id=user_id, email="", roles=frozenset(roles), city_ids=frozenset(cities), token_version=0)


def fields_in_error(body: dict, model=ProposalCreate) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"start_date": "2027-01-01", "end_date": "2026-12-31"}, "end_date"),
        ({"budget": {"amount": -1, "currency": "CNY"}}, "budget.amount"),
        ({"budget": {"amount": 10, "currency": "ZZZ"}}, "budget.currency"),
        ({"city_ids": ["city-a"]}, "city_ids"),
        ({"city_ids": ["city-a", "city-a"]}, "city_ids"),
        ({"themes": ["ai", "teleportation"]}, "themes.1"),
        (
            {"milestones": [{"title": "m", "due_date": "2027-01-01", "evidence_url": "ftp://x"}]},
            "milestones.0.evidence_url",
        ),
        ({"status": "approved"}, "status"),
    ],
)
def test_bad_proposal_input_names_the_field(extra, field):
    assert fields_in_error({"title": "t", "city_ids": CITIES, **extra}) == [field]


def test_a_good_proposal_normalises_its_currency():
    body = ProposalCreate.model_validate(
        {"title": "t", "city_ids": CITIES, "budget": {"amount": 0, "currency": "cny"}, "budget_public": True}
    )
    assert body.budget.currency == "CNY" and body.budget.amount == 0


def test_an_edit_checks_dates_given_together():
    assert fields_in_error({"start_date": "2027-02-01", "end_date": "2027-01-01"}, ProposalUpdate) == ["end_date"]
    assert ProposalUpdate.model_validate({"end_date": "2027-01-01"}).model_fields_set == {"end_date"}


def proposal(**overrides):
    values = {
        "status": "active",
        "last_activity_at": NOW - timedelta(days=1),
        "milestones": [],
        "city_ids": CITIES,
        "coordinator_id": None,
    }
    return SimpleNamespace(**{**values, **overrides})


def milestone(due: date, status: str = "planned") -> dict:
    return {"title": f"m {due}", "due_date": due.isoformat(), "status": status}


@pytest.mark.parametrize(
    ("overrides", "reasons"),
    [
        ({}, []),
        ({"last_activity_at": NOW - timedelta(days=61)}, ["no_activity"]),
        ({"last_activity_at": NOW - timedelta(days=59)}, []),
        ({"milestones": [milestone(date(2026, 5, 31))]}, ["overdue_milestone"]),
        ({"milestones": [milestone(date(2026, 5, 31), "done")]}, []),
        ({"milestones": [milestone(date(2026, 6, 1))]}, []),
        (
            {"last_activity_at": NOW - timedelta(days=90), "milestones": [milestone(date(2026, 1, 1))]},
            ["no_activity", "overdue_milestone"],
        ),
        ({"status": "approved", "last_activity_at": NOW - timedelta(days=90)}, []),
    ],
)
def test_stale_means_active_and_idle_or_overdue(overrides, reasons):
    assert service.stale_reasons(proposal(**overrides), at=NOW, stale_after=SIXTY_DAYS) == reasons


def test_the_earliest_open_milestone_is_kept_for_queries():
    milestones = [milestone(date(2026, 3, 1), "done"), milestone(date(2026, 7, 1)), milestone(date(2026, 5, 1))]
    assert service.open_milestone_due(milestones) == date(2026, 5, 1)
    assert service.open_milestone_due([milestone(date(2026, 3, 1), "done")]) is None
    assert service.overdue_milestones(milestones, date(2026, 6, 1)) == ["m 2026-05-01"]


def test_a_match_key_ignores_the_order_of_the_pair():
    assert service.match_key(["b", "a"], "w1") == service.match_key(["a", "b"], "w1") == "a,b@w1"
    assert service.match_key(["a", "b"], "w2") != service.match_key(["a", "b"], "w1")


def test_officials_propose_and_coordinators_decide():
    p = proposal(status="draft")
    assert service.user_moves(user("official", cities=["city-a"]), p) == {Status.submitted, Status.withdrawn}
    assert service.user_moves(user("official", cities=["elsewhere"]), p) == set()
    assert Status.approved in service.user_moves(user("coordinator"), p)
    assert service.user_moves(user("admin"), p) == set()


def test_once_assigned_the_decisions_are_the_assigned_coordinators():
    p = proposal(status="under_review", coordinator_id="u-1")
    assert Status.approved in service.user_moves(user("coordinator", user_id="u-1"), p)
    assert service.user_moves(user("coordinator", user_id="u-2"), p) == set()


def test_the_fields_a_user_may_edit_follow_the_state_and_the_role():
    official, coordinator = user("official", cities=["city-a"]), user("coordinator")
    assert service.editable_fields(official, proposal(status="draft")) >= {"title", "city_ids", "milestones"}
    assert service.editable_fields(coordinator, proposal(status="draft")) == set()
    for status in ("approved", "active"):
        for who in (official, coordinator):
            assert service.editable_fields(who, proposal(status=status)) == {"milestones", "kpis", "documents"}
    assert service.editable_fields(user("official", cities=["elsewhere"]), proposal(status="active")) == set()
    assert service.editable_fields(official, proposal(status="submitted")) == set()


def test_a_user_may_confirm_their_unconfirmed_member_cities_while_open():
    official = user("official", cities=["city-a", "city-b"])
    assert service.confirmable(official, proposal(status="draft", confirmations={"city-a": {}})) == ["city-b"]
    assert service.confirmable(official, proposal(status="submitted", confirmations={})) == []
    assert service.confirmable(user("coordinator"), proposal(status="draft", confirmations={})) == []


def test_private_notes_are_for_coordinators_only():
    assert service.sees_private(user("coordinator"))
    for roles in (("official",), ("observer",), ("admin",)):
        assert not service.sees_private(user(*roles))


def test_csv_export_has_one_row_per_proposal_with_lists_joined():
    from citypair_pilot_zones.schemas import ProposalOut

    out = ProposalOut.model_validate(
        {
            "id": "p-1", "title": "Xi'an–Almaty", "status": "active", "city_ids": CITIES, "lead_city_id": "city-a",
            "members": [], "themes": ["ai", "ecommerce"], "objectives": [], "activities": [],
            "budget": {"amount": 5.5, "currency": "CNY"}, "budget_public": False, "funding_sources": [],
            "start_date": "2026-01-01", "end_date": None, "milestones": [], "overdue_milestones": [], "kpis": [],
            "documents": [], "score_record": None, "coordinator_id": None, "stale": False, "stale_reasons": [],
            "last_activity_at": NOW, "version": 3, "created_at": NOW, "updated_at": NOW, "transitions": [],
            "allowed_transitions": [],
        }
    )  # fmt: skip
    lines = (tabular.csv_header() + tabular.csv_rows([out])).splitlines()
    assert lines[0].split(",") == list(tabular.COLUMNS)
    row = dict(zip(tabular.COLUMNS, lines[1].split(","), strict=True))
    assert row["city_ids"] == "city-a|city-b" and row["themes"] == "ai|ecommerce"
    assert row["budget_amount"] == "5.5" and row["budget_currency"] == "CNY" and row["end_date"] == ""
