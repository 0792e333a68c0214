"""Open data through the gateway, without signing in: the fields each city chose to make public, and who may
choose them."""

import uuid

import pytest

from tests.support import city_body

CONTACTS = {"office": "Foreign Affairs Office", "email": "fao@open.example", "phone": "+86 29 1234 5678"}


def new_city(client, name: str, **overrides) -> dict:
    body = city_body(name, geonames_id=uuid.uuid4().int % 1_000_000_000 + 1, contacts=CONTACTS, **overrides)
    response = client.post("/api/v1/cities", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def open_cities(anonymous, **params) -> dict:
    response = anonymous.get("/api/v1/open-data/cities", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return {c["id"]: c for c in response.json()["items"]}


@pytest.fixture(scope="module")
def tag():
    return uuid.uuid4().hex[:8]


def test_a_city_shows_id_name_and_country_until_its_officials_make_fields_public(
    anonymous, coordinator, official_of, tag
):
    city = new_city(coordinator, f"Open {tag}", local_name="开放", timezone="Asia/Shanghai")
    assert city["public_fields"] == []
    assert open_cities(anonymous, q=tag)[city["id"]] == {"id": city["id"], "name": city["name"], "country_code": "CN"}

    official = official_of(city["id"])
    changed = official.patch(
        f"/api/v1/cities/{city['id']}", json={"public_fields": ["population", "themes", "local_name"]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["public_fields"] == ["population", "themes", "local_name"]
    shown = open_cities(anonymous, q=tag)[city["id"]]
    assert set(shown) == {"id", "name", "country_code", "population", "themes", "local_name"}
    assert shown["population"] == city["population"] and shown["local_name"] == "开放"
    assert shown["themes"]["ai"]["offer"] == 5
    history = coordinator.get(f"/api/v1/cities/{city['id']}/history").json()["items"]
    assert history[0]["changes"]["public_fields"] == [[], ["population", "themes", "local_name"]]


def test_only_published_cities_and_never_contacts(anonymous, coordinator, tag):
    draft = new_city(coordinator, f"Draft {tag}", draft=True)
    retired = new_city(coordinator, f"Retired {tag}")
    assert coordinator.post(f"/api/v1/cities/{retired['id']}/retire").status_code == 200
    listed = open_cities(anonymous, q=tag)
    assert draft["id"] not in listed and retired["id"] not in listed
    response = anonymous.get("/api/v1/open-data/cities", params={"q": tag})
    assert "fao@open.example" not in response.text and "contacts" not in response.text


def test_filters_by_country_and_name_and_pages(anonymous, coordinator, tag):
    kz = new_city(coordinator, f"Steppe {tag}", country_code="KZ")
    cn = new_city(coordinator, f"River {tag}")
    assert set(open_cities(anonymous, q=f"steppe {tag}")) == {kz["id"]}
    assert kz["id"] in open_cities(anonymous, q=tag, country="kz") and cn["id"] not in open_cities(
        anonymous, country="KZ", q=tag
    )
    page = anonymous.get("/api/v1/open-data/cities", params={"q": tag, "limit": 1, "offset": 1}).json()
    assert page["limit"] == 1 and page["offset"] == 1 and len(page["items"]) == 1 and page["total"] >= 3


@pytest.mark.parametrize("field", ["contacts", "external_id", "contact_email"])
def test_contacts_can_never_be_made_public(coordinator, official_of, tag, field):
    city = new_city(coordinator, f"Private {field} {tag}")
    response = official_of(city["id"]).patch(
        f"/api/v1/cities/{city['id']}", json={"public_fields": ["population", field]}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == ["public_fields.1"]
    assert "never public" in response.json()["errors"][0]["message"]


def test_only_the_citys_officials_and_admins_choose_its_public_fields(admin, coordinator, official_of, tag):
    from tests.support import client_for, create_user

    city = new_city(coordinator, f"Chooser {tag}")
    other = new_city(coordinator, f"Other {tag}")
    observer_user = create_user(admin, ["observer"])
    with client_for(str(admin.base_url), observer_user["email"]) as observer:
        refused = {
            "observer": observer,
            "another city's official": official_of(other["id"]),
            "coordinator": coordinator,
        }
        for who, client in refused.items():
            response = client.patch(f"/api/v1/cities/{city['id']}", json={"public_fields": ["population"]})
            assert response.status_code == 403, (who, response.text)
    assert coordinator.get(f"/api/v1/cities/{city['id']}").json()["public_fields"] == []
    response = admin.patch(f"/api/v1/cities/{city['id']}", json={"public_fields": ["population"]})
    assert response.status_code == 200 and response.json()["public_fields"] == ["population"]
    assert coordinator.patch(f"/api/v1/cities/{city['id']}", json={"population": 5}).status_code == 200, (
        "a coordinator still edits the rest of the profile"
    )


# --------------------------------------------------------------------------- the data package


def wait_until_pilot_zones_know(stack, *city_ids: str) -> None:
    from tests.support import eventually, query

    db = stack.config.database_url("pilot_zones")
    marks = ", ".join(f":c{i}" for i in range(len(city_ids)))
    params = {f"c{i}": c for i, c in enumerate(city_ids)}
    sql = f"SELECT count(*) FROM known_city WHERE status = 'published' AND id IN ({marks})"
    eventually(lambda: query(db, sql, **params) == [(len(city_ids),)], what="pilot_zones to know the cities")


@pytest.fixture(scope="module")
def published(stack, coordinator, official_of, tag):
    """Two partner cities that publish some fields, a third that publishes none, and an approved pilot zone."""
    a = new_city(coordinator, f"Xi'an {tag}", latitude=34.26, longitude=108.93, local_name="西安")
    b = new_city(coordinator, f"Almaty {tag}", country_code="KZ", latitude=43.25, longitude=76.91)
    c = new_city(coordinator, f"Quiet {tag}", country_code="UZ", latitude=41.3, longitude=69.2)
    rows = "city1,country1,lat1,lng1,city2,country2,lat2,lng2\n"
    rows += f"Xi'an {tag},China,34.26,108.93,Almaty {tag},Kazakhstan,43.25,76.91\n"
    imported = coordinator.post(
        "/api/v1/cities/partnerships/import", content=rows, headers={"Content-Type": "text/csv"}
    )
    assert imported.json()["created"] == 1, imported.text
    official_a, official_b = official_of(a["id"]), official_of(b["id"])
    public = {"public_fields": ["population", "themes", "partner_ids", "local_name", "languages", "demo"]}
    assert official_a.patch(f"/api/v1/cities/{a['id']}", json=public).status_code == 200
    assert (
        official_b.patch(f"/api/v1/cities/{b['id']}", json={"public_fields": ["latitude", "longitude"]}).status_code
        == 200
    )
    wait_until_pilot_zones_know(stack, a["id"], b["id"])
    body = {"title": f"AI corridor {tag}", "city_ids": [a["id"], b["id"]], "themes": ["ai"], "start_date": "2027-01-01",
            "budget": {"amount": 1000, "currency": "CNY"}, "budget_public": True}  # fmt: skip
    proposal = official_a.post("/api/v1/pilot-zones", json=body)
    assert proposal.status_code == 201, proposal.text
    pid = proposal.json()["id"]
    assert official_b.post(f"/api/v1/pilot-zones/{pid}/members/{b['id']}/confirm").status_code == 200
    for client, to in ((official_a, "submitted"), (coordinator, "under_review"), (coordinator, "approved")):
        moved = client.post(f"/api/v1/pilot-zones/{pid}/transitions", json={"to": to})
        assert moved.status_code == 200, moved.text
    return {"a": a, "b": b, "c": c, "pilot_zone": pid}


def test_partners_are_public_only_among_published_cities(anonymous, published, tag):
    a, b = published["a"], published["b"]
    listed = open_cities(anonymous, q=tag)
    assert listed[a["id"]]["partner_ids"] == [b["id"]]
    assert "partner_ids" not in listed[b["id"]] and set(listed[b["id"]]) == {
        "id",
        "name",
        "country_code",
        "latitude",
        "longitude",
    }


def test_the_exported_data_package_is_valid_and_holds_exactly_what_is_public(stack, anonymous, published, tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from frictionless import Package

    env = {**os.environ, "CITYPAIR_GATEWAY_URL": stack.config.gateway_url}
    citypair = str(Path(sys.executable).parent / "citypair")
    done = subprocess.run(
        [citypair, "open-data", "export", str(tmp_path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid: frictionless found no error" in done.stdout

    package = Package(str(tmp_path / "datapackage.json"))
    report = package.validate()
    assert report.valid, report.flatten(["resourcePath", "rowNumber", "fieldName", "type", "note"])
    names = ["cities", "cities-json", "partnerships", "partnerships-json", "pilot-zones", "pilot-zones-json"]
    assert {r.name for r in package.resources} == set(names)
    assert [lic["name"] for lic in package.get_resource("partnerships").licenses] == ["CC-BY-SA-4.0"]
    assert "Wikipedia contributors" in package.get_resource("partnerships").sources[0]["title"]
    assert {r.name: r.type for r in package.resources} == dict.fromkeys(names, "table")  # JSON ones read as tables
    # ... so frictionless checks the JSON rows against their Table Schema: a wrong one is found
    original = (tmp_path / "cities.json").read_text(encoding="utf-8")
    rows = json.loads(original)
    rows[0]["population"] = "many"
    (tmp_path / "cities.json").write_text(json.dumps(rows), encoding="utf-8")
    found = Package(str(tmp_path / "datapackage.json")).validate()
    assert [t.name for t in found.tasks if not t.valid] == ["cities-json"]
    assert found.flatten(["fieldName", "type"]) == [["population", "type-error"]]
    (tmp_path / "cities.json").write_text(original, encoding="utf-8")

    a, b, c = published["a"], published["b"], published["c"]
    cities = {row["id"]: row for row in json.loads((tmp_path / "cities.json").read_text(encoding="utf-8"))}
    filled = {k for k, v in cities[a["id"]].items() if v is not None}
    assert filled == {"id", "name", "country_code", "population", "local_name", "languages", "demo", "offer_ai",
                      "need_ai", "offer_ecommerce", "need_ecommerce"}  # fmt: skip
    assert {k for k, v in cities[c["id"]].items() if v is not None} == {"id", "name", "country_code"}
    assert {k for k, v in cities[b["id"]].items() if v is not None} == {
        "id",
        "name",
        "country_code",
        "latitude",
        "longitude",
    }
    pairs = json.loads((tmp_path / "partnerships.json").read_text(encoding="utf-8"))
    assert {"city_a": min(a["id"], b["id"]), "city_b": max(a["id"], b["id"]), "source": "twin_cities"} in pairs
    zones = {row["id"]: row for row in json.loads((tmp_path / "pilot-zones.json").read_text(encoding="utf-8"))}
    zone = zones[published["pilot_zone"]]
    assert zone["status"] == "approved" and zone["city_ids"] == f"{a['id']}|{b['id']}" and zone["budget_amount"] == 1000
    text = "".join(p.read_text(encoding="utf-8") for p in tmp_path.iterdir())
    assert "fao@open.example" not in text, "contacts are never open data"

    dcat = json.loads((tmp_path / "dcat.jsonld").read_text(encoding="utf-8"))
    assert dcat["@type"] == "dcat:Dataset" and len(dcat["dcat:distribution"]) == 6
    for distribution in dcat["dcat:distribution"]:
        assert (tmp_path / distribution["dcat:downloadURL"]["@id"]).is_file()


def test_the_package_is_served_at_stable_urls_without_sign_in(anonymous):
    descriptor = anonymous.get("/api/v1/open-data/datapackage.json")
    assert descriptor.status_code == 200
    for resource in descriptor.json()["resources"]:
        response = anonymous.get(f"/api/v1/open-data/{resource['path']}")
        assert response.status_code == 200, resource["path"]
        assert response.headers["content-type"].split(";")[0] == resource["mediatype"]
    dcat = anonymous.get("/api/v1/open-data/dcat.jsonld")
    assert dcat.status_code == 200 and dcat.headers["content-type"] == "application/ld+json"
