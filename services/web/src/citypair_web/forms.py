"""Form fields ⇄ API bodies, and the API's field errors ⇄ form fields. Pure."""

from citypair_shared.geography import CORRIDORS
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
}


def error_message(error: dict, lang: str) -> str:
    """A field's failure as the page says it (see VALIDATION; a service's own rule keeps the API's words)."""
    text = VALIDATION.get(error.get("type", "")) if lang != "en" else None
    return i18n.gettext(text, lang) if text else error["message"]


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
