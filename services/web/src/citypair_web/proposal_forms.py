"""Proposal form fields ⇄ pilot-zones API bodies, and the API's field errors ⇄ form fields. Pure."""

import re

from citypair_shared.themes import THEME_IDS
from citypair_web.forms import error_message

# The proposal's content as the draft and edit forms show it; delivery tracking is edited on the proposal page.
CONTENT = (
    "title",
    "city_ids",
    "lead_city_id",
    "themes",
    "objectives",
    "activities",
    "budget",
    "budget_public",
    "start_date",
    "end_date",
)
# Delivery tracking: each a table of rows on the proposal page, a row's cells named `{section}-{row}-{cell}`.
TRACKING = {
    "milestones": ("title", "due_date", "done"),
    "kpis": ("name", "target", "actual", "unit"),
    "documents": ("title", "url"),
}
ACTIVITY_SEPARATOR = " | "
DONE = "done"  # the milestone state the page's "done" box sets; the others are kept as they were


def content_form(proposal: dict) -> dict:
    """A proposal's content as flat form values."""
    budget = proposal.get("budget") or {}
    return {
        "title": proposal.get("title", ""),
        "city_ids": list(proposal.get("city_ids", [])),
        "lead_city_id": proposal.get("lead_city_id") or "",
        "themes": list(proposal.get("themes", [])),
        "objectives": "\n".join(proposal.get("objectives", [])),
        "activities": "\n".join(
            ACTIVITY_SEPARATOR.join(filter(None, (a["title"], a.get("description", ""))))
            for a in proposal.get("activities", [])
        ),
        "budget_amount": "" if budget.get("amount") is None else _plain(budget["amount"]),
        "budget_currency": budget.get("currency", ""),
        "budget_public": bool(proposal.get("budget_public")),
        "start_date": proposal.get("start_date") or "",
        "end_date": proposal.get("end_date") or "",
    }


def submitted_form(form) -> dict:
    """The posted form as the same flat values (to show again with errors or a conflict)."""
    values = {key: (form.get(key) or "").strip() for key in ("title", "lead_city_id", "objectives", "activities")}
    values |= {key: (form.get(key) or "").strip() for key in ("budget_amount", "budget_currency")}
    values |= {key: (form.get(key) or "").strip() for key in ("start_date", "end_date")}
    values["city_ids"] = list(dict.fromkeys(c for c in form.getlist("city_ids") if c))
    values["themes"] = [t for t in form.getlist("themes") if t in THEME_IDS]
    values["budget_public"] = bool(form.get("budget_public"))
    return values


def content_body(values: dict) -> dict:
    """Flat form values as the API's body; typed as given so that the API's own validation names the field."""
    amount, currency = values["budget_amount"], values["budget_currency"]
    return {
        "title": values["title"],
        "city_ids": values["city_ids"],
        "lead_city_id": values["lead_city_id"] or None,
        "themes": values["themes"],
        "objectives": _lines(values["objectives"]),
        "activities": [_activity(line) for line in _lines(values["activities"])],
        "budget": {"amount": _number(amount), "currency": currency} if amount or currency else None,
        "budget_public": values["budget_public"],
        "start_date": values["start_date"] or None,
        "end_date": values["end_date"] or None,
    }


def draft_body(values: dict) -> dict:
    """A new proposal: the content given (an empty field is left to the API's default)."""
    return {key: value for key, value in content_body(values).items() if value not in (None, [], "")}


def changed(body: dict, current: dict) -> list[tuple[str, object, object]]:
    """(field, value now, value in the edit) for each field where the edit differs from the proposal as it is now
    (what a conflict shows)."""
    now = content_body(content_form(current))
    return [(key, now.get(key), body.get(key)) for key in CONTENT if body.get(key) != now.get(key)]


def kept(values: dict) -> list[tuple[str, str]]:
    """The draft's values as query pairs: a search for a member city (a GET) carries them along."""
    pairs = [("city_ids", c) for c in values["city_ids"]] + [("themes", t) for t in values["themes"]]
    pairs += [(key, values[key]) for key in ("title", "lead_city_id", "objectives", "activities") if values[key]]
    pairs += [
        (key, values[key]) for key in ("budget_amount", "budget_currency", "start_date", "end_date") if values[key]
    ]
    return pairs + ([("budget_public", "1")] if values["budget_public"] else [])


def tracking_rows(section: str, items: list[dict]) -> list[dict]:
    """A tracking section's items as rows of cells, and one empty row to add an item."""
    rows = []
    for item in items:
        row = {cell: "" if item.get(cell) is None else _plain(item[cell]) for cell in TRACKING[section]}
        if section == "milestones":
            row |= {"done": item.get("status") == DONE, "status": item.get("status", "")}
            row["evidence_url"] = item.get("evidence_url") or ""
        rows.append(row)
    return [*rows, {cell: "" for cell in TRACKING[section]}]


def tracking_body(section: str, form) -> list[dict]:
    """The posted rows of a tracking section as the API's list; empty and removed rows are left out."""
    items = []
    for row in range(int(form.get("rows") or 0)):
        cell = {name: (form.get(f"{section}-{row}-{name}") or "").strip() for name in TRACKING[section]}
        if form.get(f"{section}-{row}-remove") or not any(v for k, v in cell.items() if k != "done"):
            continue
        if section == "milestones":
            item = {"title": cell["title"], "due_date": cell["due_date"] or None}
            kept = form.get(f"{section}-{row}-status") or ""
            status = DONE if cell["done"] else (kept if kept and kept != DONE else None)
            item |= {"status": status} if status else {}
            evidence = (form.get(f"{section}-{row}-evidence_url") or "").strip()
            item |= {"evidence_url": evidence} if evidence else {}
        elif section == "kpis":
            actual = _number(cell["actual"]) if cell["actual"] else None
            item = {"name": cell["name"], "unit": cell["unit"], "target": _number(cell["target"]), "actual": actual}
        else:
            item = dict(cell)
        items.append(item)
    return items


def tracking_rows_posted(section: str, form) -> list[dict]:
    """The posted rows as they were typed (to show again with errors or a conflict), and one empty row."""
    rows = []
    for row in range(int(form.get("rows") or 0)):
        cells = {name: (form.get(f"{section}-{row}-{name}") or "").strip() for name in TRACKING[section]}
        if section == "milestones":
            cells |= {"done": bool(cells["done"]), "status": form.get(f"{section}-{row}-status") or ""}
            cells["evidence_url"] = form.get(f"{section}-{row}-evidence_url") or ""
        if any(v for k, v in cells.items() if k not in ("done", "status")):
            rows.append(cells)
    return [*rows, {cell: "" for cell in TRACKING[section]}]


def field_errors(response, lang: str) -> dict[str, str]:
    """{form field: message} from a problem: `budget.currency` → `budget_currency`, `milestones.1.due_date` →
    `milestones-1-due_date` (the row's cell), `objectives.2` and `city_ids[0]` → the list's own field."""
    errors = {}
    for error in response.json().get("errors", []):
        parts = [p for p in re.split(r"[.\[\]]+", error["field"]) if p]
        if not parts:
            continue
        if parts[0] == "budget" and len(parts) > 1:
            field = f"budget_{parts[1]}"
        elif parts[0] in TRACKING and len(parts) > 2:
            field = "-".join(parts[:3])
        else:
            field = parts[0]
        errors.setdefault(field, error_message(error, lang))
    return errors


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _activity(line: str) -> dict:
    title, _, description = line.partition(ACTIVITY_SEPARATOR.strip())
    return {"title": title.strip(), "description": description.strip()}


def _plain(value) -> str:
    """A number as typed (no `.0` on a whole one)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: str):
    try:
        return float(value)
    except ValueError:
        return value
