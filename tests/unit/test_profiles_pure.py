"""Profiles' pure parts: name folding, CSV rows, twin-city matching, validation rules."""

import asyncio
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from citypair_profiles.cards import Card, Cards
from citypair_profiles.partnering import Candidate, Gazetteer, country_code, distance_km, match_pairs
from citypair_profiles.schemas import CityCreate
from citypair_profiles.service import Version
from citypair_profiles.tabular import BadFile, ImportedRow, TooManyRows, Upload, csv_header, csv_rows
from citypair_shared.auth import Principal
from citypair_shared.text import fold, search_text


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Xi’an", "xian"),
        ("Xi'an", "xian"),
        ("XI`AN", "xian"),
        ("Düsseldorf", "dusseldorf"),
        ("西安", "西安"),
        ("Ho  Chi-Minh", "ho chi minh"),
    ],
)
def test_fold(raw, folded):
    assert fold(raw) == folded


def test_search_text_keeps_every_distinct_name():
    assert search_text("Xi’an", None, alternates=["西安", "Xi'an", "Chang'an"]).split("\n") == [
        "xian",
        "西安",
        "changan",
    ]


def test_csv_rows_become_profile_fields_with_their_line_numbers():
    text = (
        "name,country_code,latitude,longitude,population,languages,offer_ai,need_ai,internet_users_pct,"
        "internet_users_pct_year,contact_email,demo\n"
        "Xi'an,CN,34.26,108.93,12900000,zh|en,5,1,82.5,2023,office@xian.example,true\n"
        "\n"
        "Almaty,KZ,43.25,76.91,2000000,,,,,,,\n"
    )
    rows = list(Upload(text.encode(), "csv"))
    assert [row.line for row in rows] == [2, 4]
    xian = rows[0].fields
    assert xian["languages"] == ["zh", "en"]
    assert xian["themes"] == {"ai": {"offer": 5, "need": 1}}
    assert xian["indicators"] == {"internet_users_pct": {"value": 82.5, "year": 2023}}
    assert (xian["latitude"], xian["population"]) == (34.26, 12_900_000)
    assert xian["contacts"] == {"email": "office@xian.example"}
    assert xian["demo"] is True
    assert CityCreate.model_validate(xian).themes["ai"].offer == 5
    assert "themes" not in rows[1].fields


def test_unreadable_files_are_refused_whole():
    for body, media in (
        (b"just,some,columns\n1,2,3\n", "csv"),
        (b"name,name\nA,B\n", "csv"),  # which `name` would count?
        (b"name\nA\n\xff\n", "csv"),
        (b"name\nA\x00\n", "csv"),
        (b'{"not": "a list"}', "json"),
        (b'["\xff"]', "json"),
    ):
        with pytest.raises(BadFile):
            Upload(body, media).check(10)
    rows = list(Upload(b'{"cities": [{"name": "A"}, 3]}', "json"))
    assert rows == [ImportedRow(1, {"name": "A"}), ImportedRow(2, {"__row__": 3})]


def test_the_row_cap_refuses_a_file_past_it_having_read_one_row_more():
    assert Upload(b"name\nA\nB\n", "csv").check(2) == 2
    with pytest.raises(TooManyRows):
        Upload(b"name\nA\nB\nC\n", "csv").check(2)
    with pytest.raises(TooManyRows):
        Upload(b"[" + b"1," * 1_000_000 + b"1]", "json").check(50_000)


def test_a_row_with_more_cells_than_columns_is_named():
    [row] = Upload(b"name,country_code\nA,CN,extra\n", "csv")
    with pytest.raises(ValidationError) as caught:
        CityCreate.model_validate(row.fields)
    assert "cells past the last column" in [e["loc"][0] for e in caught.value.errors()]


def test_csv_export_reads_back_as_the_same_fields():
    profile = {
        "id": "x",
        "name": "Xi'an",
        "country_code": "CN",
        "latitude": 34.26,
        "longitude": 108.93,
        "population": 1,
        "languages": ["zh"],
        "corridors": ["china_pakistan"],
        "alternate_names": ["西安"],
        "themes": {"ai": {"offer": 5, "need": 1, "notes": "", "key_projects": []}},
        "indicators": {"internet_users_pct": {"value": 82.5, "unit": "%", "year": 2023}},
    }
    [row] = Upload((csv_header() + csv_rows([profile])).encode(), "csv")
    assert row.city_id == "x"
    parsed = CityCreate.model_validate(row.fields)
    assert parsed.alternate_names == ["西安"] and parsed.themes["ai"].offer == 5
    assert parsed.indicators["internet_users_pct"].value == 82.5


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"latitude": 91}, "latitude"),
        ({"themes": {"ai": {"offer": 7}}}, "themes.ai.offer"),
        ({"country_code": "XX"}, "country_code"),
        ({"languages": ["xx"]}, "languages.0"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"themes": {"teleportation": {}}}, "themes.teleportation.[key]"),
        ({"name": ""}, "name"),
        ({"name": "x" * 500}, "name"),
        ({"population": -1}, "population"),
        ({"status": "published"}, "status"),
        ({"indicators": {"internet_users_pct": {"value": 150, "year": 2023}}}, ""),
    ],
)
def test_bad_fields_are_named(patch, field):
    body = {"name": "Xi'an", "country_code": "CN", "latitude": 34.26, "longitude": 108.93, "population": 1}
    with pytest.raises(ValidationError) as caught:
        CityCreate.model_validate({**body, **patch})
    locations = [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()]
    assert field in locations or (
        field == "" and "indicators.internet_users_pct.value must be within" in str(caught.value)
    )


def test_country_names_resolve_to_codes():
    assert country_code("China") == "CN"
    assert country_code("Russia") == "RU"
    assert country_code("Turkey") == "TR"
    assert country_code("Atlantis") is None


def test_twin_rows_match_by_name_country_and_distance_and_never_guess():
    xian = Candidate("a", "CN", frozenset({"xian", "西安"}), 34.26, 108.93)
    almaty = Candidate("b", "KZ", frozenset({"almaty"}), 43.25, 76.91)
    far_almaty = Candidate("c", "KZ", frozenset({"almaty"}), 50.0, 80.0)
    gazetteer = Gazetteer([xian, almaty, far_almaty])
    rows = [
        {
            "city1": "Xi’an",
            "country1": "China",
            "lat1": "34.3",
            "lng1": "108.9",
            "city2": "Almaty",
            "country2": "Kazakhstan",
            "lat2": "43.2",
            "lng2": "76.9",
        },
        {
            "city1": "Xi'an",
            "country1": "China",
            "lat1": "34.3",
            "lng1": "108.9",
            "city2": "Almaty",
            "country2": "Kazakhstan",
            "lat2": "10",
            "lng2": "10",
        },
        {
            "city1": "Xi'an",
            "country1": "China",
            "lat1": "34.3",
            "lng1": "108.9",
            "city2": "Nowhere",
            "country2": "Atlantis",
            "lat2": "0",
            "lng2": "0",
        },
    ]
    pairs, unmatched = match_pairs(rows, gazetteer)
    assert pairs == {("a", "b")}
    assert [u["line"] for u in unmatched] == [3, 4]
    assert "km from the listed place" in unmatched[0]["reason"]
    assert "unknown country" in unmatched[1]["reason"]
    assert distance_km(34.26, 108.93, 34.26, 108.93) == 0
    assert round(distance_km(0, 0, 0, 1)) == 111


def test_rendered_cards_are_kept_newest_first_and_a_page_never_loses_one_it_had():
    """A full keep lets its oldest card go while a page renders others: the page still sends the one it found."""
    rendered: list[list[str]] = []

    class Rendering(Cards):
        async def _render(self, session, city_ids, user):
            rendered.append(city_ids)
            fresh = {i: Card(1, i.encode()) for i in city_ids}
            for i, card in fresh.items():
                self._keep((i, 1, False, False), card)
            return fresh

    cards, reader = Rendering(kept=2), Principal("u", "", frozenset({"observer"}), frozenset(), 0)
    now = datetime.now(UTC)

    def page(*ids: str) -> list[bytes]:
        return [card.json for card in asyncio.run(cards.of(None, [Version(i, 1, now) for i in ids], reader))]

    assert page("x") == [b"x"]
    assert page("x", "y", "z") == [b"x", b"y", b"z"]  # x was kept, then let go for y and z
    assert page("y", "z") == [b"y", b"z"] and page("x") == [b"x"]
    assert rendered == [["x"], ["y", "z"], ["x"]]
