"""The pages' gettext catalogs: extract the messages of web's code and templates (and the English names of the APIs'
keys, each in the context of its kind), write `messages.pot`, and bring every language's `.po` up to date.

    python -m citypair_cli.catalogs        # after changing a page's text; then translate what it lists as missing

`make` compiles the catalogs (`pybabel compile`); tests/unit/test_catalogs.py fails while the committed template
differs from the code or a message has no translation.
"""

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from citypair_web import i18n
from citypair_web.terms import LABELS

WEB = Path(i18n.__file__).parent
TEMPLATE = i18n.CATALOGS / "messages.pot"
METHODS = [("templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
WIDTH = 120


def template() -> Catalog:
    """Every message the pages can show, as the code and templates say it now."""
    catalog = Catalog(project="citypair", domain="messages", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        WEB, METHODS, OPTIONS, DEFAULT_KEYWORDS, strip_comment_tags=True
    ):
        catalog.add(message, locations=[(filename, lineno)], auto_comments=comments, context=context)
    for kind, labels in LABELS.items():
        for key, label in labels.items():
            catalog.add(label, locations=[(f"terms:{kind}", 0)], auto_comments=[key], context=kind)
    return catalog


def render(catalog: Catalog) -> str:
    """A catalog as its file holds it, without the dates that change on every run."""
    out = io.BytesIO()
    write_po(out, catalog, width=WIDTH, omit_header=False, sort_output=True, include_lineno=False)
    lines = out.getvalue().decode("utf-8").splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith(('"POT-Creation-Date', '"PO-Revision-Date')))


def catalog_path(lang: str) -> Path:
    return i18n.CATALOGS / lang / "LC_MESSAGES" / "messages.po"


def updated(lang: str, current: Catalog) -> Catalog:
    """`lang`'s catalog with the template's messages: new ones empty, gone ones dropped (no fuzzy guesses)."""
    with catalog_path(lang).open("rb") as f:
        catalog = read_po(f, locale=lang)
    catalog.update(current, no_fuzzy_matching=True)
    catalog.obsolete.clear()
    return catalog


def missing(catalog: Catalog) -> list[str]:
    """Messages with no translation (English needs none: its msgids are the text)."""
    if str(catalog.locale) == "en":
        return []
    untranslated = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings):
            untranslated.append(message.id if isinstance(message.id, str) else message.id[0])
    return untranslated


def main() -> int:
    current = template()
    TEMPLATE.write_text(render(current), encoding="utf-8")
    todo = 0
    for lang in i18n.LANGUAGES:
        catalog = updated(lang, current)
        catalog_path(lang).write_text(render(catalog), encoding="utf-8")
        for message in missing(catalog):
            print(f"{lang}: untranslated: {message}")
            todo += 1
    print(f"{len(current)} messages; {todo} translations missing")
    return 1 if todo else 0


if __name__ == "__main__":
    sys.exit(main())
