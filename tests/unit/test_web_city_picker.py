"""The Users page's cities field: names or ids in, city ids (or why an entry names no one city) out."""

import uuid

import pytest

from citypair_web import city_picker as picker

XIAN, XIANYANG = str(uuid.uuid4()), str(uuid.uuid4())
OSH_KG, OSH_TJ = str(uuid.uuid4()), str(uuid.uuid4())


def city(city_id: str, name: str, country: str = "CN", **names) -> dict:
    return {"id": city_id, "name": name, "country_code": country, "local_name": None, "alternate_names": [], **names}


def page(*cities: dict, total: int | None = None) -> dict:
    return {"items": list(cities), "total": len(cities) if total is None else total}


def resolved(text: str, found: dict[str, dict], current: dict[str, str] | None = None):
    typed, current = picker.entries(text), current or {}
    assert set(picker.to_search(typed, current)) == set(found), "the entries searched are the ones answered"
    return picker.resolve(typed, found, current)


def test_entries_are_comma_separated_or_one_per_line():
    assert picker.entries(" Xi'an,\nOsh ,, \n Kashgar ") == ["Xi'an", "Osh", "Kashgar"]


def test_ids_pass_through_without_a_search():
    upper = OSH_KG.upper()
    assert resolved(f"{XIAN}, {upper}", {}) == ([XIAN, upper], [])


def test_the_only_city_found_is_the_one_named():
    assert resolved("Xi", {"Xi": page(city(XIAN, "Xi'an"))}) == ([XIAN], [])


def test_the_city_so_called_wins_over_others_that_contain_the_name():
    found = {"XIAN": page(city(XIAN, "Xi’an"), city(XIANYANG, "Xianyang"))}
    assert resolved("XIAN", found) == ([XIAN], [])


def test_case_accents_and_apostrophes_aside_any_name_of_a_city_is_its_name():
    urumqi, almaty = str(uuid.uuid4()), str(uuid.uuid4())
    found = {
        "urumqi": page(city(urumqi, "Ürümqi"), city(str(uuid.uuid4()), "Ürümqi Xian")),
        "西安": page(city(XIAN, "Xi'an", local_name="西安"), city(XIANYANG, "Xianyang", local_name="咸阳西安")),
        "alma-ata": page(city(almaty, "Almaty", "KZ", alternate_names=["Alma Ata"]), city(OSH_KG, "Alma-Atinka")),
    }
    assert resolved("urumqi, 西安, alma-ata", found) == ([urumqi, XIAN, almaty], [])


def test_a_name_of_several_cities_is_refused_with_each_and_its_id():
    found = {"Osh": page(city(OSH_KG, "Osh", "KG"), city(OSH_TJ, "Osh", "TJ"), city(XIAN, "Boshan"))}
    ids, unresolved = resolved(f"{XIAN}, Osh", found)
    assert ids == [XIAN]
    assert unresolved == [picker.Unresolved("Osh", tuple(found["Osh"]["items"][:2]), 2)]
    assert picker.message(unresolved, "en") == (
        f"“Osh” could be Osh (KG, {OSH_KG}) or Osh (TJ, {OSH_TJ}): type the ID of the one you mean."
    )


def test_a_search_that_finds_many_lists_the_first_few_and_says_how_many():
    many = [city(str(uuid.uuid4()), f"Xi {n}") for n in range(picker.SEARCHED)]
    ids, unresolved = resolved("Xi", {"Xi": page(*many, total=1234)})
    assert ids == [] and unresolved == [picker.Unresolved("Xi", tuple(many[: picker.SHOWN]), 1234)]
    said = picker.message(unresolved, "en")
    assert said.startswith("1,234 cities match “Xi”, such as Xi 0 (CN, ") and "type more of the name" in said


def test_a_name_no_city_has_is_refused():
    ids, unresolved = resolved("Xian, Kashgr", {"Xian": page(city(XIAN, "Xi'an")), "Kashgr": page()})
    assert ids == [XIAN] and unresolved == [picker.Unresolved("Kashgr")]
    assert picker.message(unresolved, "en") == "No city is called “Kashgr”."


def test_every_entry_refused_is_said_in_the_pages_language():
    unresolved = [picker.Unresolved("Kashgr"), picker.Unresolved("Osh", (city(OSH_KG, "Osh", "KG"),) * 2, 2)]
    said = picker.message(unresolved, "zh")
    assert "Kashgr" in said and OSH_KG in said and "No city" not in said and "could be" not in said
    assert "。 " not in said and said.count("。") == 2  # Chinese sentences follow each other without a space
    assert ". " in picker.message(unresolved, "en")


def test_a_name_of_the_users_own_city_is_that_city_without_a_search():
    """The field shows the user's cities by name; sent back unchanged, a name other cities share keeps its city."""
    current = {OSH_TJ: "Osh", XIAN: "Xi'an"}
    assert resolved("osh, Xi'an, Xianyang", {"Xianyang": page(city(XIANYANG, "Xianyang"))}, current) == (
        [OSH_TJ, XIAN, XIANYANG],
        [],
    )


def test_the_field_shows_the_users_cities_by_names_that_read_back_as_them():
    unknown, washington, other_osh = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    names = {XIAN: "Xi'an", OSH_KG: "Osh", other_osh: "Osh", washington: "Washington, D.C.", OSH_TJ: "Osh"}
    shown = picker.field_value([XIAN, unknown, washington, OSH_KG], names)
    assert shown == f"Xi'an, {unknown}, {washington}, Osh", "an unknown city, a name with a comma: by id"
    assert picker.field_value([OSH_KG, other_osh], names) == f"{OSH_KG}, {other_osh}", "two of the user's Osh"
    current = {c: names[c] for c in (XIAN, OSH_KG, washington)}
    assert resolved(shown, {}, current) == ([XIAN, unknown, washington, OSH_KG], [])


@pytest.mark.parametrize(
    ("text", "folded"), [("Xi’an", "xian"), ("Düsseldorf", "dusseldorf"), ("西安", "西安"), (" Alma-Ata ", "alma ata")]
)
def test_names_fold_as_the_directory_folds_them(text, folded):
    assert picker.fold(text) == folded
