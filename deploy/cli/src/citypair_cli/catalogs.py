"""The gettext catalogs of the pages (web) and of the mails (identity): extract the messages of each package's code
and templates (and the English names of the keys it shows, each in the context of its kind), write its
`messages.pot`, and bring every language's `.po` up to date.

    python -m citypair_cli.catalogs        # after changing a page's or a mail's words; then translate what it lists

`make` compiles the catalogs (`pybabel compile`); tests/unit/test_catalogs.py fails while a committed template
differs from the code or a message has no translation.
"""

import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from citypair_identity import mail, notifications
from citypair_web import i18n, terms

WIDTH = 120


@dataclass(frozen=True)
class Domain:
    """One package's catalogs: where its messages are said, and the names of keys it adds to them."""

    name: str
    translations: Path  # <package>/translations: messages.pot and <lang>/LC_MESSAGES/messages.po
    languages: tuple[str, ...]
    methods: list[tuple[str, str]]
    labels: dict[str, dict[str, str]]
    options: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def template_path(self) -> Path:
        return self.translations / "messages.pot"

    def catalog_path(self, lang: str) -> Path:
        return self.translations / lang / "LC_MESSAGES" / "messages.po"


DOMAINS = (
    Domain(
        "web",
        i18n.CATALOGS,
        i18n.LANGUAGES,
        methods=[("templates/**.html", "jinja2"), ("**.py", "python")],
        labels=terms.LABELS,
        options={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
    ),
    Domain("identity", mail.CATALOGS, mail.LANGUAGES, methods=[("**.py", "python")], labels=notifications.LABELS),
)


def template(domain: Domain) -> Catalog:
    """Every message the package can show, as its code and templates say it now."""
    catalog = Catalog(project="citypair", domain="messages", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        domain.translations.parent, domain.methods, domain.options, DEFAULT_KEYWORDS, strip_comment_tags=True
    ):
        catalog.add(message, locations=[(filename, lineno)], auto_comments=comments, context=context)
    for kind, labels in domain.labels.items():
        for key, label in labels.items():
            catalog.add(label, locations=[(f"terms:{kind}", 0)], auto_comments=[key], context=kind)
    return catalog


def render(catalog: Catalog) -> str:
    """A catalog as its file holds it, without the dates that change on every run."""
    out = io.BytesIO()
    write_po(out, catalog, width=WIDTH, omit_header=False, sort_output=True, include_lineno=False)
    lines = out.getvalue().decode("utf-8").splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith(('"POT-Creation-Date', '"PO-Revision-Date')))


def load(domain: Domain, lang: str) -> Catalog:
    with domain.catalog_path(lang).open("rb") as f:
        return read_po(f, locale=lang)


def updated(domain: Domain, lang: str, current: Catalog) -> Catalog:
    """`lang`'s catalog with the template's messages: new ones empty, gone ones dropped (no fuzzy guesses)."""
    catalog = load(domain, lang)
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
    todo = total = 0
    for domain in DOMAINS:
        current = template(domain)
        total += len(current)
        domain.template_path.write_text(render(current), encoding="utf-8")
        for lang in domain.languages:
            catalog = updated(domain, lang, current)
            domain.catalog_path(lang).write_text(render(catalog), encoding="utf-8")
            for message in missing(catalog):
                print(f"{domain.name} {lang}: untranslated: {message}")
                todo += 1
    print(f"{total} messages; {todo} translations missing")
    return 1 if todo else 0


if __name__ == "__main__":
    sys.exit(main())
