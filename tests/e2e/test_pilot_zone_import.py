"""Pilot-zone imports through the gateway: XLSX, CSV (as spreadsheets save it) and JSON draft proposals as
`POST /api/v1/pilot-zones` does, row by row; an edited export imports back changing exactly the edited cell; bad
rows are reported by line and column; files refused whole, and callers who may not, write nothing.

Every draft here pairs the official's own city with fresh cities: one open proposal per set of cities."""

import codecs
import io
import itertools
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from citypair_pilot_zones.tabular import IMPORT_COLUMNS
from tests.e2e.conftest import start_stack
from tests.e2e.test_pilot_zones import register, wait_known
from tests.support import PASSWORD, client_for, create_user, query

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PROBLEM_JSON = "application/problem+json"
MAX_ROWS = 30  # this stack's CITYPAIR_PILOT_ZONES_IMPORT_MAX_ROWS (the tests write one row more)
# What any accepted edit moves besides the edited field.
VOLATILE = {"version", "updated_at", "last_activity_at"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = start_stack(
        tmp_path_factory.mktemp("stack"),
        CITYPAIR_IDENTITY_SIGNIN_ADDRESS_ATTEMPTS="100000",
        CITYPAIR_PILOT_ZONES_IMPORT_MAX_ROWS=str(MAX_ROWS),
    )
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def db(stack) -> str:
    return stack.config.database_url("pilot_zones")


@pytest.fixture(scope="module")
def fresh(coordinator, db):
    """A factory: `n` new cities pilot_zones knows."""

    def make(n: int = 1) -> list[str]:
        ids = [register(coordinator, "Import town", country_code="KZ") for _ in range(n)]
        wait_known(db, *ids)
        return ids

    return make


@pytest.fixture(scope="module")
def home(fresh) -> str:
    return fresh()[0]


@pytest.fixture(scope="module")
def official_account(admin, home) -> dict:
    return create_user(admin, ["official"], [home])


@pytest.fixture(scope="module")
def official(stack, official_account):
    with client_for(stack.config.gateway_url, official_account["email"]) as client:
        yield client


@pytest.fixture(scope="module")
def observer(stack, admin):
    with client_for(stack.config.gateway_url, create_user(admin, ["observer"])["email"]) as client:
        yield client


def import_file(client, body: bytes, media: str, **params):
    return client.post("/api/v1/pilot-zones/import", content=body, headers={"Content-Type": media}, params=params)


def workbook(rows: list[list], header=IMPORT_COLUMNS) -> bytes:
    book = Workbook()
    book.active.title = "pilot zones"
    book.active.append(list(header))
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def proposal_count(db: str) -> int:
    return query(db, "SELECT count(*) FROM proposal")[0][0]


def draft(client, title: str, city_ids: list[str], **fields) -> dict:
    response = client.post("/api/v1/pilot-zones", json={"title": title, "city_ids": city_ids, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_an_xlsx_file_drafts_proposals_and_reports_each_bad_row_by_line_and_column(
    official, official_account, home, fresh, db
):
    x, y, z = fresh(3)
    tag = uuid.uuid4().hex[:6]
    body = workbook(
        [
            [f"Drafted {tag}", x, f"{home}|{x}", "ai|ecommerce", "2027-01-01", "2027-12-31", 1000, "cny", "true"],
            [f"Bad theme {tag}", None, f"{home}|{y}", "ai|quantum"],
            [f"Not mine {tag}", None, f"{x}|{z}"],
            [f"Formula {tag}", None, f"{home}|{z}", None, None, None, "=2*1000", "CNY"],
            [f"Unknown city {tag}", None, f"{home}|no-such-city"],
        ]
    )
    before = proposal_count(db)
    response = import_file(official, body, XLSX)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["accepted"], report["rejected"], report["committed"]) == (1, 4, True)
    created, theme, not_mine, formula, unknown = report["rows"]
    assert (created["line"], created["action"], created["errors"]) == (2, "created", [])
    assert (theme["line"], theme["action"]) == (3, "rejected")
    assert [e["field"] for e in theme["errors"]] == ["themes.1"]
    assert not_mine == {
        "line": 4,
        "id": None,
        "action": "rejected",
        "errors": [
            {
                "field": "city_ids",
                "message": "none of these cities is one of yours",
                "type": "/problems/forbidden",  # a refusal's field error without a code: said as its problem
                "params": None,
            }
        ],
    }
    assert formula["errors"] == [
        {"field": "budget_amount", "message": "cell G5 holds a formula (=2*1000); an import takes values only: "
         "paste its value", "type": "cell_formula", "params": {"cell": "G5", "formula": "=2*1000"}}
    ]  # fmt: skip
    assert unknown["errors"] == [
        {
            "field": "city_ids[1]",
            "message": "unknown city 'no-such-city'",
            "type": "unknown_city",
            "params": {"city_id": "no-such-city"},
        }
    ]
    assert proposal_count(db) == before + 1, "only the good row is written"

    proposal = official.get(f"/api/v1/pilot-zones/{created['id']}").json()
    assert (proposal["title"], proposal["status"], proposal["city_ids"]) == (f"Drafted {tag}", "draft", [home, x])
    assert (proposal["lead_city_id"], proposal["themes"]) == (x, ["ai", "ecommerce"])
    assert (proposal["budget"], proposal["budget_public"]) == ({"amount": 1000, "currency": "CNY"}, True)
    assert (proposal["start_date"], proposal["end_date"]) == ("2027-01-01", "2027-12-31")
    assert [(m["city_id"], m["confirmed"]) for m in proposal["members"]] == [(home, True), (x, False)]
    timeline = official.get(f"/api/v1/pilot-zones/{created['id']}/timeline").json()["items"]
    assert [(e["action"], e["actor_id"]) for e in timeline] == [("created", official_account["id"])]
    # As a draft made with POST: no event (drafts are not announced; transitions are).
    assert query(db, "SELECT count(*) FROM outbox WHERE payload LIKE :p", p=f"%{created['id']}%") == [(0,)]


@pytest.mark.parametrize("encoding, delimiter", [("utf-8-sig", ";"), ("utf-16", "\t"), ("gb18030", ",")])
def test_csv_as_spreadsheets_save_it_drafts(official, home, fresh, encoding, delimiter):
    [x] = fresh()
    title = f"西安–阿拉木图 数字丝路 {uuid.uuid4().hex[:6]}"
    text = delimiter.join(["title", "city_ids", "themes", "budget_amount", "budget_currency"]) + "\r\n"
    text += delimiter.join([title, f"{home}|{x}", "ecommerce", "2500000.5", "CNY"]) + "\r\n"
    body = text.encode(encoding)
    report = import_file(official, body, "text/csv").json()
    [row] = report["rows"]
    assert row["action"] == "created", report
    proposal = official.get(f"/api/v1/pilot-zones/{row['id']}").json()
    assert (proposal["title"], proposal["budget"]["amount"]) == (title, 2500000.5)


def test_an_edited_xlsx_export_imports_back_changing_exactly_the_edited_cell(official, home, fresh):
    x, y = fresh(2)
    full = {
        "objectives": ["Shared AI lab"],
        "milestones": [{"title": "Lab opens", "due_date": "2027-06-30"}],
        "budget": {"amount": 2_500_000, "currency": "CNY"},
        "themes": ["ai"],
        "start_date": "2027-01-01",
    }
    first, second = draft(official, "Round trip one", [home, x], **full), draft(official, "Round trip two", [home, y])
    exported = official.get("/api/v1/pilot-zones/export", params={"format": "xlsx", "city_id": home})
    assert exported.status_code == 200 and exported.headers["content-type"] == XLSX
    book = load_workbook(io.BytesIO(exported.content))
    sheet = book["pilot zones"]
    column = {cell.value: cell.column for cell in sheet[1]}
    line_of = {sheet.cell(row=r, column=column["id"]).value: r for r in range(2, sheet.max_row + 1)}
    sheet.cell(row=line_of[first["id"]], column=column["title"], value="Round trip one, renamed")
    edited = io.BytesIO()
    book.save(edited)

    report = import_file(official, edited.getvalue(), XLSX).json()
    actions = {row["line"]: row["action"] for row in report["rows"]}
    assert actions == {line: "unchanged" for line in line_of.values()} | {line_of[first["id"]]: "updated"}, report
    after = official.get(f"/api/v1/pilot-zones/{first['id']}").json()
    changed = {k for k in after if after[k] != first[k]}
    assert changed == VOLATILE | {"title"} and after["version"] == first["version"] + 1
    assert after["milestones"] == first["milestones"] and after["objectives"] == ["Shared AI lab"]
    assert official.get(f"/api/v1/pilot-zones/{second['id']}").json()["version"] == second["version"]

    # The same file again changes nothing; the title edited once more on the old version is refused.
    again = import_file(official, edited.getvalue(), XLSX).json()
    assert {row["action"] for row in again["rows"]} == {"unchanged"}
    sheet.cell(row=line_of[first["id"]], column=column["title"], value="Lost edit")
    stale = io.BytesIO()
    book.save(stale)
    refused = import_file(official, stale.getvalue(), XLSX).json()
    [row] = [r for r in refused["rows"] if r["line"] == line_of[first["id"]]]
    assert row["action"] == "rejected" and row["errors"][0]["field"] == "version", row
    assert official.get(f"/api/v1/pilot-zones/{first['id']}").json()["title"] == "Round trip one, renamed"


def test_a_row_editing_a_proposal_follows_the_rules_of_an_edit(official, official_of, home, fresh):
    x, y = fresh(2)
    others = draft(official_of(x), "Someone else's", [x, y])
    submitted = draft(official, "Submitted", [home, x])
    assert official_of(x).post(f"/api/v1/pilot-zones/{submitted['id']}/members/{x}/confirm").status_code == 200
    moved = official.post(f"/api/v1/pilot-zones/{submitted['id']}/transitions", json={"to": "submitted"})
    assert moved.status_code == 200, moved.text
    body = "id,title\n" + "".join(f"{p['id']},Renamed\n" for p in (others, submitted))
    not_member, not_editable = import_file(official, body.encode(), "text/csv").json()["rows"]
    assert (not_member["action"], not_member["errors"][0]["field"]) == ("rejected", "city_ids"), not_member
    assert "member cities" in not_member["errors"][0]["message"]
    assert not_editable["errors"] == [
        {
            "field": "status",
            "message": "a submitted proposal cannot be edited",
            "type": "/problems/not-editable",
            "params": None,
        }
    ]
    for proposal in (others, submitted):
        assert official.get(f"/api/v1/pilot-zones/{proposal['id']}").json()["title"] == proposal["title"]


def test_a_json_export_imports_back_unchanged_and_a_json_array_drafts_every_field(official, home, fresh):
    [x] = fresh()
    exported = official.get("/api/v1/pilot-zones/export", params={"format": "json", "city_id": home})
    assert exported.status_code == 200
    back = import_file(official, exported.content, "application/json").json()
    assert back["rows"] and {row["action"] for row in back["rows"]} == {"unchanged"}, back
    milestone = {"title": "Warehouse opens", "due_date": "2027-03-31", "status": "planned", "evidence_url": None}
    rows = [{"title": "From JSON", "city_ids": [home, x], "objectives": ["Trade"], "milestones": [milestone]}]
    [row] = import_file(official, json.dumps({"pilot_zones": rows}).encode(), "application/json").json()["rows"]
    proposal = official.get(f"/api/v1/pilot-zones/{row['id']}").json()
    assert (proposal["objectives"], proposal["milestones"]) == (["Trade"], [milestone])


def test_all_or_nothing_keeps_nothing_if_a_row_is_bad(official, home, fresh, db):
    [x] = fresh()
    body = f"title,city_ids\nKept out,{home}|{x}\nNo cities,\n".encode()
    before = proposal_count(db)
    report = import_file(official, body, "text/csv", all_or_nothing="true").json()
    assert (report["committed"], report["accepted"], report["rejected"]) == (False, 0, 1)
    rows = [(r["line"], r["action"], r["id"]) for r in report["rows"]]
    assert rows == [(2, "not imported", None), (3, "rejected", None)]
    assert report["rows"][1]["errors"][0]["field"] == "city_ids"
    assert proposal_count(db) == before


def test_past_the_row_cap_the_file_is_refused_whole(official, home, fresh, db):
    others = fresh(8)  # with `home`, 36 sets of cities: the cap's rows must not be duplicates of each other
    sets = [[c] for c in others] + [list(pair) for pair in itertools.combinations(others, 2)]
    body = "title,city_ids\n" + "".join(f"Capped {i},{'|'.join([home, *s])}\n" for i, s in enumerate(sets[:31]))
    before = proposal_count(db)
    response = import_file(official, body.encode(), "text/csv")
    assert response.status_code == 413 and response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["max_rows"] == MAX_ROWS and problem["errors"][0]["field"] == "body"
    assert proposal_count(db) == before
    assert import_file(official, body.rsplit("Capped", 1)[0].encode(), "text/csv").json()["accepted"] == MAX_ROWS


def test_the_gateway_takes_an_import_up_to_its_import_limit_and_no_more(official, home, fresh):
    [x] = fresh()
    padded = json.dumps([{"title": "Padded", "city_ids": [home, x]}]) + " " * (3 * 2**20)  # past the 2 MB of others
    assert import_file(official, padded.encode(), "application/json").json()["accepted"] == 1
    too_large = import_file(official, b"[" + b" " * (21 * 2**20) + b"]", "application/json")
    assert too_large.status_code == 413 and too_large.headers["content-type"] == PROBLEM_JSON


@pytest.mark.parametrize(
    "body, media, status, says",
    [
        (b"title,city_ids\nT,a|b\n", XLSX, 422, ("not an XLSX workbook", "workbook_not_zip", {})),
        (b"name,city_ids\nT,a|b\n", "text/csv", 422, ("`title` column", "header_missing_column", {"column": "title"})),
        (b"title\n\xff\xfe\xfa\n", "text/csv", 422, ("UTF-8, UTF-16", "file_not_text", {})),
        (b"title\nT\n", "text/plain", 415, None),
    ],
    ids=["not a workbook", "no title column", "no known encoding", "not a known media type"],
)
def test_a_file_refused_whole_is_a_problem_and_writes_nothing(official, db, body, media, status, says):
    before = proposal_count(db)
    response = import_file(official, body, media)
    assert response.status_code == status and response.headers["content-type"] == PROBLEM_JSON, response.text
    if says:  # the API's words, and the rule's code and values, by which a page says it in its own language
        text, code, params = says
        (error,) = response.json()["errors"]
        assert error == {
            "field": "body",
            "message": error["message"],
            "type": code,
            **({"params": params} if params else {}),
        }
        assert text in error["message"]
    assert proposal_count(db) == before


def test_only_officials_import(anonymous, observer, coordinator, home, fresh, db):
    [x] = fresh()
    body = f"title,city_ids\nNot theirs,{home}|{x}\n".encode()
    before = proposal_count(db)
    for client, status in ((anonymous, 401), (observer, 403), (coordinator, 403)):
        response = import_file(client, body, "text/csv")
        assert response.status_code == status and response.headers["content-type"] == PROBLEM_JSON, response.text
    assert proposal_count(db) == before


def test_the_templates_import_as_a_draft_once_they_name_real_cities(official, observer, anonymous, home, fresh):
    x, y = fresh(2)
    csv_template = observer.get("/api/v1/pilot-zones/import/template", params={"format": "csv", "bom": "true"})
    assert csv_template.status_code == 200 and csv_template.headers["content-type"].startswith("text/csv")
    assert csv_template.content.startswith(codecs.BOM_UTF8)
    header, example = csv_template.content.decode("utf-8-sig").splitlines()
    assert header.split(",") == list(IMPORT_COLUMNS)
    placeholders = dict(zip(header.split(","), example.split(","), strict=True))["city_ids"].split("|")
    filled = csv_template.content.decode("utf-8-sig").replace(placeholders[0], home).replace(placeholders[1], x)
    report = import_file(official, filled.encode(), "text/csv", all_or_nothing="true").json()
    assert report["accepted"] == 1, report

    xlsx_template = observer.get("/api/v1/pilot-zones/import/template")
    assert xlsx_template.headers["content-type"] == XLSX
    book = load_workbook(io.BytesIO(xlsx_template.content))
    assert book.sheetnames == ["pilot zones", "columns"]
    assert [r[0] for r in book["columns"].iter_rows(min_row=2, values_only=True)] == list(IMPORT_COLUMNS)
    sheet = book["pilot zones"]
    sheet["B2"], sheet["C2"] = home, f"{home}|{y}"
    out = io.BytesIO()
    book.save(out)
    assert import_file(official, out.getvalue(), XLSX, all_or_nothing="true").json()["accepted"] == 1
    assert observer.get("/api/v1/pilot-zones/import/template", params={"format": "pdf"}).status_code == 422
    assert anonymous.get("/api/v1/pilot-zones/import/template").status_code == 401


def test_the_command_line_imports_and_exports_xlsx(stack, official_account, home, fresh, tmp_path):
    [x] = fresh()
    source = tmp_path / "zones.xlsx"
    source.write_bytes(workbook([["From the command line", None, f"{home}|{x}"]]))
    env = {
        **os.environ,
        "CITYPAIR_GATEWAY_URL": stack.config.gateway_url,
        "CITYPAIR_EMAIL": official_account["email"],
        "CITYPAIR_PASSWORD": PASSWORD,
    }
    citypair = str(Path(sys.executable).parent / "citypair")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([citypair, *args], env=env, capture_output=True, text=True, timeout=60)

    imported = run("import", "--pilot-zones", str(source))
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["rows"][0]["action"] == "created"
    exported = tmp_path / "zones-out.xlsx"
    assert run("export", "--pilot-zones", str(exported)).returncode == 0
    titles = [r[1] for r in load_workbook(exported)["pilot zones"].iter_rows(min_row=2, values_only=True)]
    assert "From the command line" in titles
    cities = tmp_path / "cities.xlsx"
    assert run("export", str(cities)).returncode == 0
    assert load_workbook(cities).sheetnames == ["cities"]
