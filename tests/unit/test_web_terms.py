"""The pages name every key the APIs send (themes, corridors, indicators, factors, constraints, reasons) in every
language, write each language in its own script, and say the theme sentences of an explanation in each."""

import pytest

from citypair_matching.core import CHECKS, FACTORS
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


def test_a_key_new_to_the_pages_is_shown_as_it_is():
    assert i18n.term("factor", "a_factor_added_later", "zh") == "a_factor_added_later"


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
