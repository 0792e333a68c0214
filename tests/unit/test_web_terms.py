"""The pages name every key the APIs send (themes, corridors, indicators, factors, constraints, reasons) in every
language, write each language in its own script, and say the theme sentences and constraint details of an
explanation in each."""

import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import pytest

from citypair_matching.core import CHECKS, FACTORS, CityRow, MatchIndex, Rules
from citypair_matching.explain import DETAILS
from citypair_matching.realism import RealismModel
from citypair_matching.schemas import AcceptReason, DeclineReason
from citypair_shared.geography import CORRIDORS, INDICATORS
from citypair_shared.themes import THEME_IDS
from citypair_web import i18n
from citypair_web.terms import LABELS

SCRIPTS = {"zh": ("\u4e00", "\u9fff"), "ru": ("\u0400", "\u04ff"), "ar": ("\u0600", "\u06ff")}


@pytest.mark.parametrize(
    ("kind", "keys"),
    [
        ("theme", THEME_IDS),
        ("corridor", tuple(CORRIDORS)),
        ("indicator", tuple(INDICATORS)),
        ("factor", FACTORS),
        ("check", CHECKS),
        ("reason", tuple(DeclineReason) + tuple(AcceptReason)),
    ],
)
def test_every_key_has_a_name_in_every_language(kind, keys):
    assert set(keys) <= set(LABELS[kind]), f"{kind}: no names for {set(keys) - set(LABELS[kind])}"
    for key in keys:
        english = i18n.term(kind, key, "en")
        assert english and english != key
        for lang, (low, high) in SCRIPTS.items():
            name = i18n.term(kind, key, lang)
            assert name != english and any(low <= ch <= high for ch in name), (kind, key, lang, name)


def test_theme_sentences_name_the_theme_in_the_page_language():
    flow = {"theme": "ai", "giver": "Xi'an", "offer": 5, "taker": "Almaty", "need": 4, "text": "ignored"}
    assert i18n.theme_flow(flow, "en") == "Xi'an offers Artificial intelligence at 5, Almaty needs it at 4"
    assert i18n.theme_flow(flow, "zh") == "Xi'an在“人工智能”方面可提供 5 级，Almaty的需求为 4 级"
    assert "Almaty" in i18n.theme_flow(flow, "ar") and i18n.term("theme", "ai", "ar") in i18n.theme_flow(flow, "ar")


def explained_checks() -> list[dict]:
    """The constraints of real explanations, as the API sends them: between them, every code of a detail."""
    now = datetime(2026, 11, 27, tzinfo=UTC)

    def city(city_id: str, country: str, themes: dict, **extra) -> CityRow:
        return CityRow(
            id=city_id,
            version=1,
            name=city_id.title(),
            country_code=country,
            themes=themes,
            **{"status": "published", "population": 5000, **extra},
        )

    strict = MatchIndex(rules=Rules(min_population=1000, required_theme="iot"), realism=RealismModel.neutral())
    ai, iot = {"ai": {"offer": 5, "need": 2}}, {"iot": {"offer": 1, "need": 3}}
    strict.upsert(city("xian", "CN", {**ai, **iot}, capacity=2, excluded_countries=("RU",)))
    strict.upsert(city("almaty", "KZ", ai, population=10, status="draft"))
    strict.upsert(city("lanzhou", "CN", iot))
    strict.upsert(city("tashkent", "UZ", iot))
    strict.add_partnership("xian", "lanzhou")
    strict.add_decline("xian", "tashkent", now - timedelta(days=30))
    lenient = MatchIndex(rules=Rules(allow_same_country=True), realism=RealismModel.neutral())
    lenient.upsert(city("xian", "CN", ai))
    lenient.upsert(city("lanzhou", "CN", iot))
    explained = [
        *(strict.explain("xian", other, now=now) for other in ("xian", "almaty", "lanzhou", "tashkent")),
        lenient.explain("xian", "lanzhou", now=now),
    ]
    found = [c for e in explained for c in e.checks] + strict.city_checks("xian", now=now)
    return [asdict(c) for c in found]


def test_every_constraint_detail_is_said_in_every_language():
    checks = explained_checks()
    codes = {c["code"] for c in checks} | {f["code"] for c in checks for f in c["params"].get("failures", [])}
    assert codes == set(DETAILS)
    raw = re.compile(r"\b(published|draft|iot|CN|KZ|RU|UZ)\b")  # keys and codes the pages say as words
    for check in checks:
        english = i18n.check_detail(check, "en")
        assert not raw.search(english), (check, english)
        for lang, (low, high) in SCRIPTS.items():
            said = i18n.check_detail(check, lang)
            assert any(low <= ch <= high for ch in said) and not raw.search(said), (check, lang, said)


def test_a_count_in_a_constraint_detail_takes_the_languages_plural_form():
    check = {"code": "capacity", "params": {"city": "Almaty", "partners": 1, "capacity": 5}, "detail": ""}
    assert i18n.check_detail(check, "en") == "Almaty has 1 partner, capacity 5"
    assert i18n.check_detail({**check, "params": {**check["params"], "partners": 3}}, "ru") == (
        "у города Almaty 3 партнёра, лимит 5"
    )


def test_a_key_new_to_the_pages_is_shown_as_it_is():
    assert i18n.term("factor", "a_factor_added_later", "zh") == "a_factor_added_later"
    new = {"code": "a_detail_added_later", "params": {}, "detail": "in English, from the API"}
    assert i18n.check_detail(new, "zh") == "in English, from the API"


def test_numbers_dates_and_countries_come_from_cldr():
    assert i18n.number(1234567, "en") == "1,234,567"
    assert i18n.number(1234567, "ru") == "1\xa0234\xa0567"
    assert i18n.date("2026-11-30T10:00:00+00:00", "zh") == "2026年11月30日"
    assert i18n.country("KZ", "ru") == "Казахстан"
    assert i18n.country("CN", "ar") == "الصين"
    assert i18n.country("XX", "en") == "XX"


def test_the_language_comes_from_the_browser_when_nobody_chose():
    assert i18n.negotiate("ar-EG,ar;q=0.9,en;q=0.5") == "ar"
    assert i18n.negotiate("ru-RU, en") == "ru"
    assert i18n.negotiate("de-DE") is None
