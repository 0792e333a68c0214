"""The pages' languages: gettext catalogs (Babel) for every string, CLDR for numbers, dates and country names.

Messages are English msgids in the code and templates (`_()`, `ngettext()`; the API's keys through `term`, in the
context of their kind); `translations/<lang>/LC_MESSAGES/messages.po` translate them, and `make` compiles each to
the `.mo` read here (`python -m citypair_cli.catalogs` re-extracts the template and updates the catalogs).
"""

from datetime import date as Date
from datetime import datetime
from functools import cache, reduce
from pathlib import Path

from babel import Locale
from babel.core import negotiate_locale
from babel.dates import format_date
from babel.lists import format_list
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


# Why one of matching's constraints passed or failed, by the code of its detail (the API's `detail` is English).
CHECK_DETAILS = {
    "never_itself": N_("a city is never its own partner"),
    "statuses": N_("%(city_a)s: %(status_a)s, %(city_b)s: %(status_b)s"),
    "status": N_("%(city)s: %(status)s"),
    "already_partners": N_("already partners"),
    "not_yet_partners": N_("not yet partners"),
    "declined_on": N_("declined on %(date)s (excluded for 12 months)"),
    "not_declined": N_("not declined within 12 months"),
    "excluded_countries": N_("%(city_a)s excludes %(countries_a)s, %(city_b)s excludes %(countries_b)s"),
    "same_country_allowed": N_("%(country_a)s–%(country_b)s: same-country pairs are allowed"),
    "same_country_not_allowed": N_("%(country_a)s–%(country_b)s: same-country pairs are not allowed"),
    "rules": N_("rules: a population of at least %(min_population)s"),
    "rules_with_theme": N_("rules: a population of at least %(min_population)s, an offer or need in %(theme)s"),
    "population_below": N_("%(city)s: a population of %(population)s, below %(min_population)s"),
    "no_required_theme": N_("%(city)s: no offer or need in %(theme)s"),
    "gains": N_("%(city_a)s gains %(gain_a)s, %(city_b)s gains %(gain_b)s (share of needs met)"),
}


def check_detail(check: dict, lang: str) -> str:
    """Why a constraint passed or failed, in `lang`; the API's English `detail` for a code new to the pages."""
    return _detail(check.get("code"), check.get("params") or {}, lang) or check["detail"]


def _detail(code: str | None, params: dict, lang: str) -> str | None:
    if code == "ineligible":  # each rule a city fails, one after another
        failures = [_detail(f["code"], f["params"], lang) for f in params["failures"]]
        if None in failures:
            return None
        return reduce(
            lambda before, after: gettext("%(before)s; %(after)s", lang, before=before, after=after), failures
        )
    if code == "capacity":
        text = translations(lang).ngettext(
            "%(city)s has %(partners)s partner, capacity %(capacity)s",
            "%(city)s has %(partners)s partners, capacity %(capacity)s",
            params["partners"],
        )
    elif code in CHECK_DETAILS:
        text = translations(lang).gettext(CHECK_DETAILS[code])
    else:
        return None
    return text % {name: _detail_value(name, value, lang) for name, value in params.items()}


def _detail_value(name: str, value, lang: str) -> str:
    """A parameter of a constraint's detail as `lang` says it, by its name (`status_a` is a city status, …)."""
    kind = name.removesuffix("_a").removesuffix("_b")
    if kind == "status":
        return term("city_status", value, lang)
    if kind == "theme":
        return term("theme", value, lang)
    if kind == "country":
        return country(value, lang)
    if kind == "countries":
        return format_list([country(c, lang) for c in value], locale=lang) if value else gettext("no country", lang)
    if kind == "date":
        return date(value, lang)
    if kind == "gain":
        return format_decimal(value, format="0.00", locale=lang)
    return number(value, lang) if isinstance(value, int | float) else value


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
