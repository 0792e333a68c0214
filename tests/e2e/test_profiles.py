"""City profiles through the gateway: the whole profile, who sees and edits what, the directory,
import and export, real partnerships, and the events that carry each version to matching."""

import json
import uuid

import pytest

from tests.support import city_body, eventually, query

FULL = {
    "name": "Xi'an",
    "local_name": "西安",
    "alternate_names": ["Xi’an Shi", "Chang'an"],
    "country_code": "CN",
    "admin_region": "Shaanxi",
    "latitude": 34.26,
    "longitude": 108.93,
    "population": 12_900_000,
    "timezone": "Asia/Shanghai",
    "languages": ["zh"],
    "corridors": ["new_eurasian_land_bridge"],
    "capacity": 3,
    "preferred_countries": ["KZ"],
    "excluded_countries": ["AF"],
    "themes": {"ai": {"offer": 5, "need": 1, "notes": "AI valley", "key_projects": ["Qinchuangyuan"]}},
    "indicators": {"internet_users_pct": {"value": 82.5, "year": 2023}},
    "contacts": {"office": "Foreign Affairs Office", "email": "fao@xian.example", "website": "https://xa.example"},
}


def unique(body: dict, **more) -> dict:
    """The body with a unique GeoNames id, so tests never collide on it."""
    return {**body, "geonames_id": uuid.uuid4().int % 1_000_000_000 + 1, **more}


@pytest.fixture(scope="module")
def xian(coordinator):
    response = coordinator.post("/api/v1/cities", json=unique(FULL))
    assert response.status_code == 201, response.text
    return response.json()


def test_the_whole_profile_is_stored_and_returned(xian):
    for key in ("local_name", "alternate_names", "admin_region", "timezone", "languages", "corridors", "capacity"):
        assert xian[key] == FULL[key]
    assert xian["themes"]["ai"] == FULL["themes"]["ai"]
    assert xian["indicators"]["internet_users_pct"] == {"value": 82.5, "unit": "% of population", "year": 2023}
    assert xian["status"] == "published" and xian["version"] == 1 and xian["stale"] is False


def test_contacts_only_for_the_citys_officials_coordinators_and_admins(stack, xian, coordinator, official_of, admin):
    observer_user = admin.post(
        "/api/v1/users",
        json={"email": f"o-{uuid.uuid4().hex[:6]}@t.example", "password": "observer-password", "roles": ["observer"]},
    ).json()
    from tests.support import client_for

    with client_for(stack.config.gateway_url, observer_user["email"], "observer-password") as observer:
        assert observer.get(f"/api/v1/cities/{xian['id']}").json()["contacts"] is None
        listed = observer.get("/api/v1/cities", params={"q": "xian"}).json()["items"]
        assert listed and all(c["contacts"] is None for c in listed)
    assert official_of(xian["id"]).get(f"/api/v1/cities/{xian['id']}").json()["contacts"]["email"] == "fao@xian.example"
    assert official_of("other").get(f"/api/v1/cities/{xian['id']}").json()["contacts"] is None
    assert coordinator.get(f"/api/v1/cities/{xian['id']}").json()["contacts"]["office"] == "Foreign Affairs Office"


def test_every_read_sends_the_profile_as_it_is_now_and_as_this_reader_may_see_it(coordinator, official_of):
    """Reads send kept renderings of each version (citypair_profiles.cards): one reader's contacts never reach
    another, and an edit or an imported partnership shows at once in the profile and in the directory."""
    tag = uuid.uuid4().hex[:8]
    contacts = {"office": "Office", "email": f"{tag}@city.example", "phone": None, "website": None}
    a, b = (
        coordinator.post("/api/v1/cities", json=unique(city_body(f"Cardcity{tag}{n}", contacts=contacts))).json()
        for n in (1, 2)
    )
    own, other = official_of(a["id"]), official_of("elsewhere")

    def seen(client) -> list[dict]:
        found = client.get("/api/v1/cities", params={"q": f"cardcity{tag}"}).json()["items"]
        one = client.get(f"/api/v1/cities/{a['id']}")
        assert one.headers["etag"] == f'"{one.json()["version"]}"'
        return [one.json(), *found]

    def fields(client, *keys) -> list[tuple]:
        return [tuple(city[k] for k in keys) for city in seen(client)]

    assert fields(own, "id", "contacts")[:2] == [(a["id"], contacts)] * 2
    assert {c for (c,) in fields(other, "contacts")} == {None}
    assert fields(coordinator, "contacts") == [(contacts,)] * 3
    moved = {"population": 123_456, "contacts": {**contacts, "email": f"new-{tag}@city.example"}}
    assert own.patch(f"/api/v1/cities/{a['id']}", json=moved).status_code == 200
    assert fields(own, "version", "population", "contacts")[:2] == [(2, 123_456, moved["contacts"])] * 2
    assert fields(other, "version", "population", "contacts")[:2] == [(2, 123_456, None)] * 2

    rows = "city1,country1,lat1,lng1,city2,country2,lat2,lng2\n"
    rows += f"Cardcity{tag}1,China,34.3,108.9,Cardcity{tag}2,China,34.3,108.9\n"
    imported = coordinator.post(
        "/api/v1/cities/partnerships/import", content=rows, headers={"Content-Type": "text/csv"}
    ).json()
    assert imported["created"] == 1, imported
    for client in (own, other):
        assert fields(client, "id", "partner_ids") == [(a["id"], [b["id"]]), (a["id"], [b["id"]]), (b["id"], [a["id"]])]


def test_contacts_never_travel_in_events(stack, xian):
    payloads = query(
        stack.config.database_url("profiles"), "SELECT payload FROM outbox WHERE payload LIKE :p", p=f"%{xian['id']}%"
    )
    assert payloads and all("fao@xian.example" not in p for (p,) in payloads)
    assert all(json.loads(p)["data"]["city"]["local_name"] == "西安" for (p,) in payloads)


def test_edits_need_the_current_etag_and_are_kept_in_history(coordinator, official_of):
    city = coordinator.post("/api/v1/cities", json=unique(city_body("Lanzhou"))).json()
    official = official_of(city["id"])
    url = f"/api/v1/cities/{city['id']}"
    etag = official.get(url).headers["etag"]
    assert etag == '"1"'
    ok = official.patch(url, json={"population": 4_400_000}, headers={"If-Match": etag})
    assert ok.status_code == 200 and ok.headers["etag"] == '"2"'
    stale = official.patch(url, json={"population": 1}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.json()["current_version"] == 2
    assert official_of("elsewhere").patch(url, json={"population": 2}).status_code == 403
    full = {**city_body("Lanzhou"), "population": 4_500_000}
    replaced = coordinator.put(url, json=full, headers={"If-Match": '"2"'})
    assert replaced.status_code == 200 and replaced.json()["themes"]["ai"]["offer"] == 5
    history = coordinator.get(f"{url}/history").json()
    assert history["total"] == 3
    assert history["items"][1]["changes"]["population"] == [12_900_000, 4_400_000]
    assert history["items"][1]["actor_id"] and history["items"][2]["action"] == "created"


def test_lifecycle_draft_published_verified_confirmed_retired(coordinator, official_of):
    draft = coordinator.post("/api/v1/cities", json=unique(city_body("Baotou"), draft=True)).json()
    url = f"/api/v1/cities/{draft['id']}"
    assert draft["status"] == "draft"
    official = official_of(draft["id"])
    assert official.post(f"{url}/publish").status_code == 403
    assert official.post(f"{url}/verify").status_code == 403
    assert coordinator.post(f"{url}/publish").json()["status"] == "published"
    assert coordinator.post(f"{url}/publish").status_code == 409
    verified = coordinator.post(f"{url}/verify").json()
    assert verified["verified"] is True and verified["verified_by"] and verified["verified_at"]
    confirmed = official.post(f"{url}/confirm").json()
    assert confirmed["last_confirmed_at"] >= verified["last_confirmed_at"]
    retired = coordinator.post(f"{url}/retire").json()
    assert retired["status"] == "retired"
    assert official.patch(url, json={"population": 5}).status_code == 409


def test_published_and_retired_profiles_reach_matching_with_their_version(stack, coordinator):
    city = coordinator.post("/api/v1/cities", json=unique(city_body("Yinchuan"))).json()
    coordinator.patch(f"/api/v1/cities/{city['id']}", json={"population": 2_900_000})
    matching_db = stack.config.database_url("matching")
    eventually(
        lambda: query(matching_db, "SELECT version FROM city_projection WHERE id = :i", i=city["id"]) == [(2,)],
        what="version 2 in matching",
    )
    coordinator.post(f"/api/v1/cities/{city['id']}/retire")
    eventually(
        lambda: query(matching_db, "SELECT status FROM city_projection WHERE id = :i", i=city["id"]) == [("retired",)],
        what="retired in matching",
    )


def test_directory_filters_search_sorts_and_pages(stack, coordinator):
    tag = uuid.uuid4().hex[:6]
    bodies = [
        unique(
            {
                **city_body(f"Kashi {tag}"),
                "local_name": f"喀什{tag}",
                "population": 700_000,
                "corridors": ["china_pakistan"],
                "themes": {"logistics": {"offer": 4, "need": 0}},
            }
        ),
        unique(
            {
                **city_body(f"Gwadar {tag}", country_code="PK"),
                "population": 90_000,
                "corridors": ["china_pakistan", "maritime_silk_road"],
                "themes": {"logistics": {"offer": 1, "need": 5}},
            }
        ),
        unique({**city_body(f"Korla {tag}"), "population": 600_000, "themes": {"iot": {"offer": 2, "need": 2}}}),
    ]
    ids = [coordinator.post("/api/v1/cities", json=b).json()["id"] for b in bodies]

    def names(**params):
        response = coordinator.get("/api/v1/cities", params={"q": tag, **params})
        assert response.status_code == 200, response.text
        return [c["name"].split()[0] for c in response.json()["items"]]

    assert names() == ["Gwadar", "Kashi", "Korla"]
    assert names(q=f"喀什{tag}") == ["Kashi"]
    assert names(country="pk") == ["Gwadar"]
    assert names(corridor="china_pakistan") == ["Gwadar", "Kashi"]
    assert names(offers="logistics:3") == ["Kashi"]
    assert names(needs="logistics:5") == ["Gwadar"]
    assert names(population_min=500_000, population_max=650_000) == ["Korla"]
    assert names(sort="-population") == ["Kashi", "Korla", "Gwadar"]
    page = coordinator.get("/api/v1/cities", params={"q": tag, "limit": 2, "offset": 2}).json()
    assert page["total"] == 3 and len(page["items"]) == 1
    coordinator.post(f"/api/v1/cities/{ids[2]}/verify")
    assert names(verified=True) == ["Korla"]
    profiles_db = stack.config.database_url("profiles")
    query(profiles_db, "SELECT 1")  # the connection works before we age one profile
    from sqlalchemy import create_engine, text

    from citypair_shared.db import sync_url

    engine = create_engine(sync_url(profiles_db))
    with engine.begin() as conn:
        conn.execute(text("UPDATE city SET last_confirmed_at = '2020-01-01' WHERE id = :i"), {"i": ids[0]})
    engine.dispose()
    assert names(stale=True) == ["Kashi"]
    assert coordinator.get("/api/v1/cities", params={"offers": "teleportation:3"}).status_code == 422
    assert coordinator.get("/api/v1/cities", params={"offers": "ai"}).json()["errors"][0]["field"] == "query.offers.0"


def test_xian_is_found_by_its_chinese_and_latin_names(coordinator, xian):
    for q in ("西安", "Xi'an", "xi’an", "changan"):
        found = coordinator.get("/api/v1/cities", params={"q": q}).json()["items"]
        assert xian["id"] in [c["id"] for c in found], q


CSV_HEADER = "external_id,name,country_code,latitude,longitude,population,offer_ai,need_ai\n"


def test_csv_import_keeps_good_rows_reports_bad_ones_by_line_and_reimports_without_duplicates(coordinator):
    tag = uuid.uuid4().hex[:6]
    text = CSV_HEADER + (
        f"{tag}-1,Nukus {tag},UZ,42.46,59.6,320000,2,4\n"
        f"{tag}-2,Bad lat {tag},UZ,95,59.6,1,1,1\n"
        f"{tag}-3,Termez {tag},UZ,37.22,67.28,140000,7,1\n"
        f"{tag}-4,Fergana {tag},UZ,40.38,71.78,290000,3,3\n"
    )
    report = coordinator.post("/api/v1/cities/import", content=text, headers={"Content-Type": "text/csv"}).json()
    assert (report["accepted"], report["rejected"]) == (2, 2)
    bad = {row["line"]: row["errors"][0]["field"] for row in report["rows"] if row["action"] == "rejected"}
    assert bad == {3: "latitude", 4: "themes.ai.offer"}
    again = text.replace("320000", "330000")
    second = coordinator.post("/api/v1/cities/import", content=again, headers={"Content-Type": "text/csv"}).json()
    assert [r["action"] for r in second["rows"] if r["line"] in (2, 5)] == ["updated", "unchanged"]
    found = coordinator.get("/api/v1/cities", params={"q": f"nukus {tag}"}).json()
    assert found["total"] == 1 and found["items"][0]["population"] == 330_000


def test_all_or_nothing_import_keeps_nothing_when_a_row_is_bad(coordinator):
    tag = uuid.uuid4().hex[:6]
    rows = [unique(city_body(f"Aktau {tag}", country_code="KZ")), {**city_body(f"Bad {tag}"), "population": -1}]
    report = coordinator.post("/api/v1/cities/import?all_or_nothing=true", json=rows).json()
    assert report["committed"] is False and report["accepted"] == 0
    assert report["rows"][1]["errors"][0]["field"] == "population"
    assert coordinator.get("/api/v1/cities", params={"q": tag}).json()["total"] == 0


def test_import_refuses_what_it_cannot_read(coordinator, official_of):
    assert (
        coordinator.post("/api/v1/cities/import", content="x", headers={"Content-Type": "text/plain"}).status_code
        == 415
    )
    assert (
        coordinator.post("/api/v1/cities/import", content="a,b\n1,2\n", headers={"Content-Type": "text/csv"}).json()[
            "errors"
        ][0]["field"]
        == "body"
    )
    assert official_of("x").post("/api/v1/cities/import", json=[]).status_code == 403


def test_import_over_the_size_limit_is_413(coordinator):
    huge = CSV_HEADER + ("x," * 4 + "\n") * (25 * 1024 * 1024 // 9)
    response = coordinator.post("/api/v1/cities/import", content=huge, headers={"Content-Type": "text/csv"})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_export_as_csv_and_json_without_contacts(coordinator, xian):
    response = coordinator.get("/api/v1/cities/export", params={"format": "json", "q": "西安"})
    assert response.status_code == 200, response.text
    as_json = response.json()
    assert xian["id"] in [c["id"] for c in as_json] and all("contacts" not in c for c in as_json)
    as_csv = coordinator.get("/api/v1/cities/export", params={"q": "西安"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "fao@xian.example" not in as_csv.text and xian["id"] in as_csv.text


def test_real_twin_city_pairs_become_partnerships_and_unmatched_rows_are_reported(stack, coordinator):
    tag = uuid.uuid4().hex[:6]
    a = coordinator.post("/api/v1/cities", json=unique(city_body(f"Urumqi{tag}", latitude=43.8, longitude=87.6))).json()
    b = coordinator.post(
        "/api/v1/cities", json=unique(city_body(f"Almaty{tag}", country_code="KZ", latitude=43.25, longitude=76.9))
    ).json()
    rows = (
        "city1,country1,lat1,lng1,city2,country2,lat2,lng2\n"
        f"Urumqi{tag},China,43.80,87.60,Almaty{tag},Kazakhstan,43.26,76.93\n"
        f"Urumqi{tag},China,43.80,87.60,Atlantis{tag},Atlantis,0,0\n"
    )
    report = coordinator.post(
        "/api/v1/cities/partnerships/import", content=rows, headers={"Content-Type": "text/csv"}
    ).json()
    assert (report["matched"], report["created"], report["unmatched"]) == (1, 1, 1)
    assert report["unmatched_rows"][0]["line"] == 3
    assert coordinator.get(f"/api/v1/cities/{a['id']}").json()["partner_ids"] == [b["id"]]
    eventually(
        lambda: (
            a["id"]
            not in [
                p["city_id"]
                for p in coordinator.get(f"/api/v1/cities/{b['id']}/partners", params={"k": 100})
                .json()
                .get("items", [{"city_id": a["id"]}])
            ]
        ),
        what="matching to know they are partners",
    )
    # Matching's memory (its followers) may know before its database does (its durable consumer commits).
    sql = "SELECT source FROM partnership WHERE city_a IN (:a, :b)"
    eventually(
        lambda: query(stack.config.database_url("matching"), sql, a=a["id"], b=b["id"]) == [("profile",)],
        what="matching's database to record the partnership",
    )


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"latitude": 91}, "latitude"),
        ({"themes": {"ai": {"offer": 7}}}, "themes.ai.offer"),
        ({"country_code": "XX"}, "country_code"),
        ({"languages": ["xx"]}, "languages.0"),
        ({"themes": {"teleportation": {"offer": 1}}}, "themes.teleportation.[key]"),
        ({"name": ""}, "name"),
        ({"name": "n" * 500}, "name"),
        ({"population": -1}, "population"),
        ({"verified": True}, "verified"),
        ({"status": "published"}, "status"),
    ],
)
def test_bad_profiles_are_422_naming_the_field(coordinator, patch, field):
    response = coordinator.post("/api/v1/cities", json={**city_body(), **patch})
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]


def test_geonames_id_is_unique(coordinator):
    body = unique(city_body("Hami"))
    assert coordinator.post("/api/v1/cities", json=body).status_code == 201
    duplicate = coordinator.post("/api/v1/cities", json=body)
    assert duplicate.status_code == 409 and duplicate.json()["errors"][0]["field"] == "geonames_id"


def test_directory_needs_sign_in(anonymous):
    assert anonymous.get("/api/v1/cities").status_code == 401


def test_the_command_line_tool_imports_and_exports(stack, coordinator, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD

    tag = uuid.uuid4().hex[:6]
    source = tmp_path / "cities.csv"
    source.write_text(CSV_HEADER + f"{tag}-1,Andijan {tag},UZ,40.78,72.34,450000,1,2\n{tag}-2,,UZ,0,0,1,1,1\n")
    env = {
        **os.environ,
        "CITYPAIR_GATEWAY_URL": stack.config.gateway_url,
        "CITYPAIR_EMAIL": ADMIN_EMAIL,
        "CITYPAIR_PASSWORD": ADMIN_PASSWORD,
    }
    citypair = str(Path(sys.executable).parent / "citypair")
    imported = subprocess.run([citypair, "import", str(source)], env=env, capture_output=True, text=True, timeout=60)
    report = json.loads(imported.stdout)
    assert (report["accepted"], report["rejected"]) == (1, 1)
    assert report["rows"][1]["errors"][0]["field"] == "name"
    exported = tmp_path / "out.json"
    done = subprocess.run([citypair, "export", str(exported)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"Andijan {tag}" in [c["name"] for c in json.loads(exported.read_text())]
