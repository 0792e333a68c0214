"""The proposal forms ⇄ the pilot-zones API: what the pages send, and where they show what the API refused."""

import httpx
from starlette.datastructures import FormData

from citypair_web import proposal_forms as pforms

PROPOSAL = {
    "title": "Xi'an–Almaty AI corridor",
    "city_ids": ["city-a", "city-b"],
    "lead_city_id": "city-a",
    "themes": ["ai"],
    "objectives": ["Train engineers"],
    "activities": [{"title": "Joint lab", "description": "GPU cluster"}, {"title": "Exchange", "description": ""}],
    "budget": {"amount": 1500000.0, "currency": "CNY"},
    "budget_public": True,
    "start_date": "2027-01-01",
    "end_date": None,
}


def form(pairs: list[tuple[str, str]]) -> FormData:
    return FormData(pairs)


def test_the_edit_form_sends_back_what_it_was_given():
    values = pforms.content_form(PROPOSAL)
    assert values["activities"] == "Joint lab | GPU cluster\nExchange" and values["budget_amount"] == "1500000"
    posted = [("city_ids", c) for c in values["city_ids"]] + [("themes", t) for t in values["themes"]]
    posted += [(k, values[k]) for k in ("title", "lead_city_id", "objectives", "activities", "budget_amount")]
    posted += [("budget_currency", "CNY"), ("budget_public", "1"), ("start_date", "2027-01-01")]
    body = pforms.content_body(pforms.submitted_form(form(posted)))
    assert body == {**{k: PROPOSAL[k] for k in pforms.CONTENT}}
    assert pforms.changed(body, PROPOSAL) == []


def test_a_conflict_lists_each_field_that_differs_now_and_yours():
    values = pforms.content_form(PROPOSAL)
    mine = pforms.content_body({**values, "title": "Mine", "objectives": "Train engineers\nOpen a hub"})
    assert pforms.changed(mine, PROPOSAL) == [
        ("title", PROPOSAL["title"], "Mine"),
        ("objectives", ["Train engineers"], ["Train engineers", "Open a hub"]),
    ]


def test_a_draft_leaves_out_what_was_not_filled_in():
    posted = form([("city_ids", "city-a"), ("city_ids", "city-b"), ("city_ids", "city-a"), ("title", "T")])
    assert pforms.draft_body(pforms.submitted_form(posted)) == {
        "title": "T",
        "city_ids": ["city-a", "city-b"],
        "budget_public": False,
    }


def test_tracking_rows_skip_empty_and_removed_rows_and_keep_a_milestones_state():
    posted = form(
        [
            ("rows", "4"),
            ("milestones-0-title", "Lab opened"),
            ("milestones-0-due_date", "2027-06-30"),
            ("milestones-0-status", "in_progress"),
            ("milestones-1-title", "Pilot run"),
            ("milestones-1-due_date", "2027-09-30"),
            ("milestones-1-done", "1"),
            ("milestones-2-title", "Dropped"),
            ("milestones-2-due_date", "2027-01-01"),
            ("milestones-2-remove", "1"),
            ("milestones-3-title", ""),
        ]
    )
    assert pforms.tracking_body("milestones", posted) == [
        {"title": "Lab opened", "due_date": "2027-06-30", "status": "in_progress"},
        {"title": "Pilot run", "due_date": "2027-09-30", "status": "done"},
    ]
    kpis = form([("rows", "1"), ("kpis-0-name", "Trained"), ("kpis-0-target", "200"), ("kpis-0-unit", "people")])
    assert pforms.tracking_body("kpis", kpis) == [
        {"name": "Trained", "unit": "people", "target": 200.0, "actual": None}
    ]


def test_an_unticked_done_box_reopens_a_milestone():
    posted = form([("rows", "1"), ("milestones-0-title", "M"), ("milestones-0-due_date", "2027-01-01")])
    reopened = form([*posted.multi_items(), ("milestones-0-status", "done")])
    assert pforms.tracking_body("milestones", reopened) == [{"title": "M", "due_date": "2027-01-01"}]


def test_the_apis_field_errors_land_on_the_form_fields():
    problem = httpx.Response(
        422,
        json={
            "errors": [
                {"field": "budget.currency", "message": "not a currency"},
                {"field": "city_ids[0]", "message": "unknown city"},
                {"field": "objectives.2", "message": "too long"},
                {"field": "milestones.1.due_date", "message": "not a date"},
            ]
        },
    )
    assert pforms.field_errors(problem, "en") == {
        "budget_currency": "not a currency",
        "city_ids": "unknown city",
        "objectives": "too long",
        "milestones-1-due_date": "not a date",
    }


def test_validation_failures_are_said_in_the_page_language():
    """The API words its messages in English; a page in another language says the failure's type in its own."""
    problem = httpx.Response(
        422,
        json={
            "errors": [
                {"field": "title", "message": "Field required", "type": "missing"},
                {"field": "budget.currency", "message": "not a currency we know", "type": "value_error"},
            ]
        },
    )
    in_english = pforms.field_errors(problem, "en")
    assert in_english == {"title": "Field required", "budget_currency": "not a currency we know"}
    in_russian = pforms.field_errors(problem, "ru")
    assert in_russian["title"] == "Обязательное поле."
    # a service's own rule has no generic wording: its words stay
    assert in_russian["budget_currency"] == "not a currency we know"
