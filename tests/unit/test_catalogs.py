"""The gettext catalogs, the pages' (web) and the mails' (identity), are up to date with the code and translate
every message into every language."""

import pytest

from citypair_cli import catalogs

DOMAINS = {domain.name: domain for domain in catalogs.DOMAINS}
CATALOGS = [(name, lang) for name, domain in DOMAINS.items() for lang in domain.languages]


@pytest.fixture(scope="module")
def templates():
    return {name: catalogs.template(domain) for name, domain in DOMAINS.items()}


def test_the_pages_and_the_mails_have_catalogs_in_the_four_languages():
    assert {name: domain.languages for name, domain in DOMAINS.items()} == dict.fromkeys(
        ("web", "identity"), ("en", "zh", "ru", "ar")
    )


@pytest.mark.parametrize("name", DOMAINS)
def test_the_committed_template_is_what_the_code_says(templates, name):
    assert DOMAINS[name].template_path.read_text(encoding="utf-8") == catalogs.render(templates[name]), (
        "run `python -m citypair_cli.catalogs` and commit the catalogs"
    )


@pytest.mark.parametrize(("name", "lang"), CATALOGS)
def test_every_message_is_in_every_catalog_and_translated(templates, name, lang):
    catalog = catalogs.load(DOMAINS[name], lang)
    assert {(m.id, m.context) for m in catalog if m.id} == {(m.id, m.context) for m in templates[name] if m.id}
    assert catalogs.missing(catalog) == []


@pytest.mark.parametrize(("name", "lang"), CATALOGS)
def test_translations_keep_the_placeholders_and_plural_forms(name, lang):
    catalog = catalogs.load(DOMAINS[name], lang)
    errors = [(message.id, [str(e) for e in found]) for message, found in catalog.check()]
    assert errors == []
    plurals = [m for m in catalog if m.pluralizable]
    assert plurals, "the pages and the mails each say at least one count"
    for message in plurals:
        assert len(message.string) == catalog.num_plurals or lang == "en"


def test_a_missing_translation_is_found():
    for domain in catalogs.DOMAINS:
        catalog = catalogs.load(domain, "ru")
        message = next(m for m in catalog if m.id and not m.pluralizable)
        message.string = ""
        assert catalogs.missing(catalog) == [message.id]
