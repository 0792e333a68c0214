"""The import page sends each file as the API reads it (CSV, XLSX or JSON) and names what the import did with each
row in every language."""

from typing import get_args

import pytest

from citypair_shared import upload
from citypair_shared.spreadsheet import MEDIA_BY_ENDING, XLSX_MEDIA
from citypair_web import forms, i18n
from citypair_web.terms import LABELS

SCRIPTS = {"zh": ("\u4e00", "\u9fff"), "ru": ("\u0400", "\u04ff"), "ar": ("\u0600", "\u06ff")}


def test_the_pages_send_only_media_types_the_api_reads():
    assert set(MEDIA_BY_ENDING.values()) == set(upload.IMPORT_MEDIA)
    assert {MEDIA_BY_ENDING[f".{media}"] for media in get_args(upload.Media)} == set(upload.IMPORT_MEDIA)


@pytest.mark.parametrize(
    ("filename", "content", "media"),
    [
        ("cities.csv", b"name\nX\n", "text/csv"),
        ("cities.JSON", b"[]", "application/json"),
        ("cities.xlsx", b"PK\x03\x04...", XLSX_MEDIA),
        ("cities", b"PK\x03\x04...", XLSX_MEDIA),  # a workbook without its ending, by its first bytes
        ("cities.txt", b"name\nX\n", "text/csv"),
        ("", b"name\nX\n", "text/csv"),
    ],
)
def test_a_file_is_sent_as_its_ending_or_its_first_bytes_say(filename, content, media):
    assert forms.import_media(filename, content) == media


@pytest.mark.parametrize("lang", SCRIPTS)
def test_every_import_action_has_a_name_in_every_language(lang):
    actions = get_args(upload.ImportAction)
    assert set(LABELS["import_action"]) == set(actions)
    low, high = SCRIPTS[lang]
    for action in actions:
        name = i18n.term("import_action", action, lang)
        assert any(low <= ch <= high for ch in name) and action not in name.lower(), (action, lang, name)
