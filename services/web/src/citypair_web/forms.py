"""Form fields ⇄ API bodies, and the API's field errors ⇄ form fields. Pure."""

import os

from babel.lists import format_list

from citypair_shared.geography import CORRIDORS
from citypair_shared.spreadsheet import MEDIA_BY_ENDING, XLSX_MEDIA
from citypair_shared.themes import THEME_IDS
from citypair_web import i18n
from citypair_web.i18n import N_

SCALARS = ("name", "local_name", "timezone", "population", "latitude", "longitude", "capacity")
CONTACTS = ("office", "email", "phone", "website")


def directory_params(query) -> dict:
    params = {
        k: v
        for k, v in query.items()
        if v
        and k
        in (
            "q",
            "country",
            "corridor",
            "population_min",
            "population_max",
            "status",
            "verified",
            "stale",
            "sort",
            "offset",
        )
    }
    for side in ("offers", "needs"):
        theme, level = query.get(f"{side}_theme"), query.get(f"{side}_level") or "1"
        if theme:
            params[side] = f"{theme}:{level}"
    params["limit"] = 20
    return params


def profile_form(city: dict) -> dict:
    """A profile as flat form values."""
    form = {k: "" if city.get(k) is None else str(city[k]) for k in SCALARS}
    form["languages"] = ", ".join(city.get("languages", []))
    form["corridors"] = list(city.get("corridors", []))
    for theme in THEME_IDS:
        levels = city.get("themes", {}).get(theme, {})
        form[f"offer_{theme}"] = str(levels.get("offer", 0))
        form[f"need_{theme}"] = str(levels.get("need", 0))
        form[f"notes_{theme}"] = levels.get("notes", "")
    for key in CONTACTS:
        form[f"contact_{key}"] = (city.get("contacts") or {}).get(key) or ""
    return form


def profile_body(form) -> dict:
    """Form values as a PATCH body; values are sent as typed so the API's own validation names the field."""
    body: dict = {}
    for key in SCALARS:
        value = (form.get(key) or "").strip()
        if key in ("local_name", "timezone"):
            body[key] = value or None
        elif value:
            body[key] = _number(value)
    body["languages"] = [v.strip() for v in (form.get("languages") or "").split(",") if v.strip()]
    body["corridors"] = [c for c in form.getlist("corridors") if c in CORRIDORS]
    themes = {}
    for theme in THEME_IDS:
        offer, need = _number(form.get(f"offer_{theme}") or "0"), _number(form.get(f"need_{theme}") or "0")
        notes = (form.get(f"notes_{theme}") or "").strip()
        if offer or need or notes:
            themes[theme] = {"offer": offer, "need": need, "notes": notes}
    body["themes"] = themes
    contacts = {k: (form.get(f"contact_{k}") or "").strip() or None for k in CONTACTS}
    body["contacts"] = {k: v for k, v in contacts.items() if v}
    return body


ZIP_SIGNATURE = b"PK\x03\x04"  # how an XLSX file starts (a zip archive), whatever its name


def import_media(filename: str, content: bytes) -> str:
    """The Content-Type the API reads an uploaded file as: by its name's ending, else an XLSX by its first bytes,
    else CSV (which the API reads in any of the encodings spreadsheets save)."""
    ending = os.path.splitext(filename)[1].lower()
    if ending in MEDIA_BY_ENDING:
        return MEDIA_BY_ENDING[ending]
    return XLSX_MEDIA if content.startswith(ZIP_SIGNATURE) else "text/csv"


def round_body(form) -> dict:
    """The round form as a POST body: the cities by country and corridor (none: every published city)."""
    return {
        "cities": {"countries": form.getlist("countries"), "corridors": form.getlist("corridors")},
        "capacity": _number(form.get("capacity") or "1"),
        "min_score": _number(form.get("min_score") or "0"),
    }


# The API's validation failures by type (pydantic's), said in the page's language; the API words its own message
# in English, and more precisely (its limits), so English pages show that one.
VALIDATION = {
    "missing": N_("This field is required."),
    "string_too_short": N_("Too short."),
    "too_short": N_("Too few entries."),
    "string_too_long": N_("Too long."),
    "too_long": N_("Too many entries."),
    "greater_than": N_("Too small."),
    "greater_than_equal": N_("Too small."),
    "less_than": N_("Too large."),
    "less_than_equal": N_("Too large."),
    "string_pattern_mismatch": N_("Not in the expected form."),
    "int_parsing": N_("Not a whole number."),
    "int_type": N_("Not a whole number."),
    "int_from_float": N_("Not a whole number."),
    "float_parsing": N_("Not a number."),
    "float_type": N_("Not a number."),
    "bool_parsing": N_("Not yes or no."),
    "date_parsing": N_("Not a date (YYYY-MM-DD)."),
    "date_from_datetime_parsing": N_("Not a date (YYYY-MM-DD)."),
    "literal_error": N_("Not one of the values offered."),
    "enum": N_("Not one of the values offered."),
    "url_parsing": N_("Not a web address."),
    "url_scheme": N_("Not a web address."),
    "string_type": N_("Not text."),
    "list_type": N_("Not a list."),
    "extra_forbidden": N_("Not a known column or field."),
}


# The services' own rules by their code (the error's `type`), naming the values of its `params`; said so in every
# language, English too. A code new to the pages keeps the API's English `message`.
RULES = {
    "unknown_country": N_("“%(value)s” is not an ISO 3166-1 alpha-2 country code."),
    "unknown_language": N_("“%(value)s” is not an ISO 639-1 language code."),
    "unknown_time_zone": N_("“%(value)s” is not an IANA time zone."),
    "unknown_currency": N_("“%(value)s” is not an ISO 4217 currency code."),
    "indicator_out_of_range": N_("%(indicator)s must be within %(low)s–%(high)s."),
    "never_public": N_("%(value)s is never public."),
    "listed_twice": N_("Each may be listed only once."),
    "end_before_start": N_("The end date is before the start date."),
    "unknown_city": N_("No city has the id “%(city_id)s”."),
    "retired_city": N_("The city “%(city_id)s” is retired."),
    "unknown_cities": N_("Unknown cities: %(city_ids)s."),
    "lead_not_member": N_("The lead city must be one of the member cities."),
    "unknown_coordinator": N_("No coordinator has the id “%(user_id)s”."),
    "coordinator_not_named": N_("Name the coordinator to assign (only a coordinator assigns themselves)."),
    "unknown_comment": N_("There is no comment “%(comment_id)s” on this proposal."),
    "reason_not_allowed": N_("Choose one of these reasons: %(allowed)s."),
    "own_partner": N_("A city is never its own partner."),
    "bad_unsubscribe_link": N_("This is not a valid unsubscribe link."),
    "password_too_short": N_(
        "The password must be at least %(min_length)s characters long (a passphrase of a few words is easy to "
        "remember)."
    ),
    "password_too_long": N_("The password must be at most %(max_length)s characters long."),
    "password_common": N_("This is one of the most common passwords, which are tried first: choose another."),
    "password_repetitive": N_("The password is too repetitive or sequential to be hard to guess."),
    "password_personal": N_("The password must not contain your e-mail address or name."),
    "password_like_current": N_("The password must not contain your e-mail address, name or current password."),
    "password_not_current": N_("This is not your current password."),
    "idempotency_key_repeated": N_("Send one Idempotency-Key."),
    "idempotency_key_empty": N_("The Idempotency-Key must not be empty."),
    "idempotency_key_too_long": N_("The Idempotency-Key must be at most %(max_length)s characters."),
    "idempotency_key_not_ascii": N_("The Idempotency-Key must be printable ASCII (a UUID is best)."),
    "idempotency_key_reused": N_("This Idempotency-Key was used for a different request in the last 24 hours."),
    # an import's file refused whole (citypair_shared.upload.BadFile)
    "file_not_text": N_("The file is not text in UTF-8, UTF-16 (with a byte-order mark) or GB18030."),
    "file_not_utf8": N_("The file is not UTF-8 text."),
    "file_encoding_broken": N_("The file stops being text in its encoding after line %(line)s."),
    "not_csv": N_("The file is not CSV (line %(line)s)."),
    "header_nul": N_("The header row contains the NUL character (U+0000)."),
    "header_missing_column": N_("The file needs a header row with at least a “%(column)s” column."),
    "header_repeats_column": N_("The header row repeats the column “%(column)s”."),
    "columns_missing": N_("The file needs the columns %(columns)s."),
    "file_nul": N_("The file contains the NUL character (U+0000) on line %(line)s."),
    "sheet_nul": N_("The sheet contains the NUL character (U+0000) in row %(row)s."),
    "json_not_array": N_("A JSON import is an array of rows, or an object with the array under “%(key)s”."),
    "workbook_not_zip": N_("The file is not an XLSX workbook (an XLSX file is a zip archive; this is not one)."),
    "workbook_too_large": N_("The workbook unpacks to more than %(max_mb)s MB."),
    "workbook_unreadable": N_("The file is not an XLSX workbook that can be read."),
    "workbook_no_sheet": N_("The workbook has no sheet."),
    "sheet_unreadable": N_("The sheet “%(sheet)s” cannot be read."),
    # an import's row refused before or beside validation (citypair_shared.problems.rule_error)
    "cell_formula": N_("Cell %(cell)s holds a formula (%(formula)s); an import takes values only: paste its value."),
    "ids_name_different_cities": N_(
        "The row's id, geonames_id and external_id name different cities (%(city_ids)s): it updates none of them."
    ),
    "version_not_whole_number": N_("A version is a whole number from 1 (the one an export wrote)."),
}


# Problems that name no field, by their `type` (a stable URI path), said in every language, English too: each sentence
# is true wherever that type is raised. A type new to the pages keeps the API's English `detail`.
PROBLEMS = {
    "/problems/validation": N_("Some of what was sent is not valid."),
    "/problems/not-found": N_("This does not exist, or no longer does."),
    "/problems/unauthorized": N_("Your sign-in is missing or has expired. Sign in again."),
    "/problems/forbidden": N_("You are not allowed to do this."),
    "/problems/stale": N_("Someone else changed this meanwhile. Reload it, then make your change again."),
    "/problems/conflict": N_("Someone else changed this at the same moment; nothing was saved. Try again."),
    "/problems/duplicate": N_("One with the same details exists already."),
    "/problems/state": N_("This is not possible in the city's current state."),
    "/problems/transition": N_("This step is not possible in the proposal's current state."),
    "/problems/not-editable": N_("In its current state, this proposal cannot be changed this way."),
    "/problems/unconfirmed": N_("Every member city must confirm its membership first."),
    "/problems/pair-excluded": N_("This pair of cities does not meet the rules for a partnership."),
    "/problems/already-decided": N_("This city has already made this decision on the pair."),
    "/problems/link-gone": N_("This link was used already, has expired, or is unknown: ask for a new one."),
    "/problems/throttled": N_("Too many attempts. Wait a little, then try again."),
    "/problems/too-many-rows": N_("The file has more rows than one import takes: split it."),
    "/problems/media-type": N_("Send a CSV, JSON or XLSX file."),
    "/problems/idempotency-in-progress": N_("The same request is still being handled. Wait a moment, then try again."),
    "/problems/idempotency-response-lost": N_("Your request was done, but its answer was lost. Reload to see it."),
    "/problems/upstream-unavailable": N_(
        "The service did not answer. Reload to see whether your change was made before trying again."
    ),
}


def problem_message(body: dict, lang: str) -> str | None:
    """A problem's sentence in the page's language, by its type; None for a type the pages do not know."""
    text = PROBLEMS.get(body.get("type", "")) if isinstance(body, dict) else None
    return i18n.gettext(text, lang) if text else None


def error_message(error: dict, lang: str) -> str:
    """A field's failure as the page says it: a service's rule (RULES) in every language, a schema check
    (VALIDATION) in the other languages (the API's English names its limits), an import row refused as a request
    would be, by the problem's type (PROBLEMS); else the API's words."""
    code, params = error.get("type") or "", error.get("params") or {}
    if code in RULES:
        try:
            return i18n.gettext(RULES[code], lang) % {name: _param(name, value, lang) for name, value in params.items()}
        except (KeyError, TypeError):  # a parameter the sentence names is missing: the API's words say it all
            return error["message"]
    if code in PROBLEMS:
        return i18n.gettext(PROBLEMS[code], lang)
    text = VALIDATION.get(code) if lang != "en" else None
    return i18n.gettext(text, lang) if text else error["message"]


def _param(name: str, value, lang: str) -> str:
    """A value a rule's sentence names, as `lang` says it (an indicator's name, reasons, lists, numbers)."""
    if name == "indicator":
        return i18n.term("indicator", value, lang)
    if name == "allowed":
        return format_list([i18n.term("reason", reason, lang) for reason in value], locale=lang)
    if isinstance(value, list):
        return format_list([str(item) for item in value], locale=lang)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return i18n.number(value, lang)
    return str(value)


def field_errors(response, lang: str) -> dict[str, str]:
    """{field: message} from a 422 problem, with API field names mapped onto form field names."""
    errors = {}
    for error in response.json().get("errors", []):
        field = error["field"]
        parts = field.split(".")
        if parts[0] == "themes" and len(parts) >= 3:
            field = f"{parts[2]}_{parts[1]}"
        elif parts[0] == "contacts" and len(parts) >= 2:
            field = f"contact_{parts[1]}"
        elif parts[0] in ("languages", "corridors", "query", "cities"):
            field = parts[1] if parts[0] in ("query", "cities") and len(parts) > 1 else parts[0]
        errors.setdefault(field, error_message(error, lang))
    return errors


def completeness(city: dict) -> int:
    """Share of the profile's sections that are filled in, in percent."""
    checks = [
        bool(city.get("local_name")),
        bool(city.get("timezone")),
        bool(city.get("languages")),
        bool(city.get("corridors")),
        len(city.get("themes", {})) >= 3,
        bool(city.get("indicators")),
        bool(city.get("contacts")),
        bool(city.get("alternate_names")),
        city.get("verified", False),
    ]
    return round(100 * sum(checks) / len(checks))


def _number(value: str):
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value
