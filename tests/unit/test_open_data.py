"""The open data's Data Package: rows as the services write them make a package frictionless finds valid, with a
Table Schema, licence and sources per resource; what breaks a schema or a foreign key, frictionless reports."""

import asyncio
import json
from datetime import date

import pytest
from frictionless import Package

from citypair_cli.open_data import validate
from citypair_pilot_zones import tabular as pilot_zone_rows
from citypair_profiles import tabular as city_rows
from citypair_shared import open_data

XIAN = {
    "id": "c-xian",
    "name": "=Xi'an",  # defused in the CSV, as every CSV citypair writes
    "country_code": "CN",
    "local_name": "西安",
    "languages": ["zh"],
    "population": 12_900_000,
    "themes": {"ai": {"offer": 5, "need": 1, "notes": "", "key_projects": []}},
    "indicators": {"internet_users_pct": {"value": 82.5, "unit": "%", "year": 2023}},
    "demo": True,
    "partner_ids": ["c-almaty"],
}
ALMATY = {"id": "c-almaty", "name": "Almaty", "country_code": "KZ", "latitude": 43.25, "longitude": 76.91}
ZONE = {
    "id": "pz-1",
    "title": "AI corridor",
    "status": "approved",
    "lead_city_id": "c-xian",
    "cities": [
        {"id": "c-xian", "name": "Xi'an", "country_code": "CN"},
        {"id": "c-almaty", "name": None, "country_code": None},
    ],
    "themes": ["ai", "ecommerce"],
    "start_date": date(2027, 1, 1),
    "end_date": None,
    "budget": {"amount": 2_500_000, "currency": "CNY"},
}


async def _one_batch(rows):
    yield rows


def write_table(directory, table: str, columns, rows) -> None:
    async def text(format: str) -> str:
        return "".join([chunk async for chunk in open_data.stream_table(columns, _one_batch(rows), format)])

    for format in ("csv", "json"):
        (directory / f"{table}.{format}").write_text(asyncio.run(text(format)), encoding="utf-8")


def write_package(directory, *, cities=(XIAN, ALMATY), zones=(ZONE,), pairs=None) -> None:
    pairs = [{"city_a": "c-almaty", "city_b": "c-xian", "source": "twin_cities"}] if pairs is None else pairs
    write_table(directory, "cities", open_data.CITY_COLUMNS, [city_rows.open_row(c) for c in cities])
    write_table(directory, "partnerships", open_data.PARTNERSHIP_COLUMNS, pairs)
    write_table(directory, "pilot-zones", open_data.PILOT_ZONE_COLUMNS, [pilot_zone_rows.open_row(z) for z in zones])
    (directory / "datapackage.json").write_text(json.dumps(open_data.descriptor()), encoding="utf-8")


def test_the_package_of_the_services_rows_is_valid(tmp_path):
    write_package(tmp_path)
    report = Package(str(tmp_path / "datapackage.json")).validate()
    assert report.valid, report.flatten(["resourcePath", "rowNumber", "fieldName", "type", "note"])
    assert validate(tmp_path) == []
    [xian, almaty] = json.loads((tmp_path / "cities.json").read_text(encoding="utf-8"))
    assert (xian["offer_ai"], xian["need_ai"], xian["internet_users_pct_year"], xian["languages"]) == (5, 1, 2023, "zh")
    assert xian["name"] == "=Xi'an" and "'=Xi'an" in (tmp_path / "cities.csv").read_text(encoding="utf-8")
    assert almaty["population"] is None and almaty["latitude"] == 43.25
    [zone] = json.loads((tmp_path / "pilot-zones.json").read_text(encoding="utf-8"))
    assert zone["city_ids"] == "c-xian|c-almaty" and zone["start_date"] == "2027-01-01" and zone["end_date"] is None


def test_every_resource_has_a_table_schema_a_licence_and_sources():
    descriptor = open_data.descriptor()
    assert len(descriptor["resources"]) == 2 * len(open_data.TABLES)
    for resource in descriptor["resources"]:
        assert resource["schema"]["fields"] and resource["licenses"] and resource["sources"], resource["name"]
    licences = {r["name"]: [lic["name"] for lic in r["licenses"]] for r in descriptor["resources"]}
    assert licences["partnerships"] == ["CC-BY-SA-4.0"] and licences["cities"] == ["CC-BY-4.0"]
    assert "Wikipedia contributors" in open_data.TWIN_CITIES_SOURCE["title"]


def test_the_dcat_entry_has_a_distribution_per_file():
    entry = open_data.dcat_entry()
    assert entry["@type"] == "dcat:Dataset"
    files = {d["dcat:downloadURL"]["@id"] for d in entry["dcat:distribution"]}
    assert files == {r["path"] for r in open_data.descriptor()["resources"]}


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"pairs": [{"city_a": "c-xian", "city_b": "c-nowhere", "source": "twin_cities"}]}, "foreign-key"),
        ({"cities": (XIAN, XIAN)}, "primary-key"),
        ({"zones": ({**ZONE, "status": "draft"},)}, "constraint-error"),
    ],
    ids=["a partner that is not listed", "a city twice", "a draft pilot zone"],
)
def test_frictionless_finds_what_breaks_the_package(tmp_path, change, expected):
    write_package(tmp_path, **change)
    report = Package(str(tmp_path / "datapackage.json")).validate()
    assert expected in {error_type for (error_type,) in report.flatten(["type"])}


def test_json_rows_are_checked_against_the_same_schema(tmp_path):
    write_package(tmp_path)
    rows = json.loads((tmp_path / "cities.json").read_text(encoding="utf-8"))
    rows[0]["population"] = "many"
    (tmp_path / "cities.json").write_text(json.dumps(rows), encoding="utf-8")
    [error] = validate(tmp_path)
    assert error.startswith("cities-json row 2, population:")
