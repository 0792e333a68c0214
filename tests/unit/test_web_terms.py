"""The pages name every key the APIs send (themes, corridors, indicators, factors, constraints, reasons) in
both languages, and say the theme sentences of an explanation in both."""

import pytest

from citypair_matching.core import CHECKS, FACTORS
from citypair_matching.schemas import AcceptReason, DeclineReason
from citypair_shared.geography import CORRIDORS, INDICATORS
from citypair_shared.themes import THEME_IDS
from citypair_web import i18n


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
def test_every_key_has_an_english_and_a_chinese_name(kind, keys):
    assert set(keys) <= set(i18n.TERMS[kind]), f"{kind}: no names for {set(keys) - set(i18n.TERMS[kind])}"
    for key in keys:
        en, zh = i18n.term(kind, key, "en"), i18n.term(kind, key, "zh")
        assert en and zh and en != key and en != zh
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), (kind, key, zh)


def test_theme_sentences_name_the_theme_in_the_page_language():
    flow = {"theme": "ai", "giver": "Xi'an", "offer": 5, "taker": "Almaty", "need": 4, "text": "ignored"}
    assert i18n.theme_flow(flow, "en") == "Xi'an offers Artificial intelligence at 5, Almaty needs it at 4"
    assert i18n.theme_flow(flow, "zh") == "Xi'an在“人工智能”方面可提供 5 级，Almaty的需求为 4 级"


def test_a_key_new_to_the_pages_is_shown_as_it_is():
    assert i18n.term("factor", "a_factor_added_later", "zh") == "a_factor_added_later"
