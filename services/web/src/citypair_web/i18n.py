"""The pages' languages: gettext catalogs (Babel) for every string, CLDR for numbers, dates and country names.

Messages are English msgids in the code and templates (`_()`, `ngettext()`; the API's keys through `term`, in the
context of their kind); `translations/<lang>/LC_MESSAGES/messages.po` translate them, and `make` compiles each to
the `.mo` read here (`python -m citypair_cli.catalogs` re-extracts the template and updates the catalogs).
"""

from datetime import date as Date
from datetime import datetime
from functools import cache
from pathlib import Path

from babel import Locale
from babel.core import negotiate_locale
from babel.dates import format_date
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

from citypair_web.terms import LABELS

LANGUAGES = ("en", "zh", "ru", "ar")
# Written right to left: the pages say `dir="rtl"` and the style sheet uses logical properties only.
RTL = frozenset({"ar"})
NAMES = {"en": "English", "zh": "中文", "ru": "Русский", "ar": "العربية"}
CATALOGS = Path(__file__).parent / "translations"


@cache
def translations(lang: str) -> NullTranslations:
    """The compiled catalog of `lang` (English needs none: the msgids are English)."""
    if lang == "en":
        return NullTranslations()
    found = Translations.load(CATALOGS, [lang])
    if not isinstance(found, Translations):
        raise RuntimeError(f"no compiled catalog for {lang!r} in {CATALOGS}: run `make install` (pybabel compile)")
    return found


def negotiate(accept_language: str) -> str | None:
    """The first language of an `Accept-Language` header that the pages speak."""
    wanted = [part.split(";")[0].strip().replace("-", "_") for part in accept_language.split(",") if part.strip()]
    return negotiate_locale(wanted, list(LANGUAGES), sep="_") if wanted else None


def N_(message: str) -> str:
    """Marks a message for the catalogs where it is defined; `gettext` translates it where it is shown."""
    return message


def gettext(message: str, lang: str, **values) -> str:
    text = translations(lang).gettext(message)
    return text % values if values else text


def term(kind: str, key: str, lang: str) -> str:
    """An API key of `kind` in `lang`; the key itself if it is new to the pages."""
    label = LABELS[kind].get(key)
    return translations(lang).pgettext(kind, label) if label else key


def theme_flow(flow: dict, lang: str) -> str:
    """One theme where one city offers what the other needs, as a sentence (the API's `text` is English)."""
    return gettext(
        "%(giver)s offers %(theme)s at %(offer)s, %(taker)s needs it at %(need)s",
        lang,
        giver=flow["giver"],
        theme=term("theme", flow["theme"], lang),
        offer=flow["offer"],
        taker=flow["taker"],
        need=flow["need"],
    )


def notification(item: dict, lang: str) -> str:
    """A notification's title in `lang`. Identity titles it in English ("<proposal title>: submitted", "Match
    accepted", "New partner suggestion: <city>"); what happened is the type of its event, and only a proposal's own
    title and a suggested city's name are kept as written."""
    if item["kind"] not in LABELS["event"]:
        return item["title"]
    what = term("event", item["kind"], lang)
    if item["kind"].startswith("pilot_zones.proposal."):
        return gettext("%(title)s: %(what)s", lang, title=item["title"].rsplit(": ", 1)[0], what=what)
    if item["kind"].startswith("matching.suggestions.") and ": " in item["title"]:
        return gettext("%(what)s: %(city)s", lang, what=what, city=item["title"].split(": ", 1)[1])
    return what


def number(value, lang: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return format_decimal(value, format="#,##0.00", locale=lang)
    return format_decimal(int(value), locale=lang)


def date(value: str | datetime | Date | None, lang: str) -> str:
    if not value:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return format_date(moment, format="medium", locale=lang)


def country(code: str | None, lang: str) -> str:
    """A country's name in `lang` (CLDR), from its ISO 3166-1 alpha-2 code; the code if CLDR has no name."""
    if not code:
        return "—"
    return _territories(lang).get(code.upper(), code)


@cache
def _territories(lang: str) -> dict[str, str]:
    return dict(Locale.parse(lang).territories)
