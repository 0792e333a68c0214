"""The pages' gettext catalogs are up to date with the code and translate every message into every language."""

import pytest
from babel.messages.pofile import read_po

from citypair_cli import catalogs
from citypair_web import i18n


@pytest.fixture(scope="module")
def template():
    return catalogs.template()


def load(lang: str):
    with catalogs.catalog_path(lang).open("rb") as f:
        return read_po(f, locale=lang)


def test_the_committed_template_is_what_the_code_says(template):
    assert catalogs.TEMPLATE.read_text(encoding="utf-8") == catalogs.render(template), (
        "run `python -m citypair_cli.catalogs` and commit the catalogs"
    )


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_message_is_in_every_catalog_and_translated(template, lang):
    catalog = load(lang)
    assert {(m.id, m.context) for m in catalog if m.id} == {(m.id, m.context) for m in template if m.id}
    assert catalogs.missing(catalog) == []


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_translations_keep_the_placeholders_and_plural_forms(lang):
    catalog = load(lang)
    errors = [(message.id, [str(e) for e in found]) for message, found in catalog.check()]
    assert errors == []
    plurals = [m for m in catalog if m.pluralizable]
    assert plurals, "the pages say at least one count"
    for message in plurals:
        assert len(message.string) == catalog.num_plurals or lang == "en"


def test_a_missing_translation_is_found():
    catalog = load("ru")
    message = next(m for m in catalog if m.id and not m.pluralizable)
    message.string = ""
    assert catalogs.missing(catalog) == [message.id]
