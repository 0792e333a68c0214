"""Proposals as CSV and spreadsheet rows. Pure: no I/O."""

from citypair_pilot_zones.schemas import ProposalOut
from citypair_shared.spreadsheet import csv_text

LIST_SEPARATOR = "|"
SHEET = "pilot zones"  # the sheet of an XLSX export
COLUMNS = (
    "id",
    "title",
    "status",
    "lead_city_id",
    "city_ids",
    "themes",
    "start_date",
    "end_date",
    "budget_amount",
    "budget_currency",
    "budget_public",
    "coordinator_id",
    "milestones",
    "overdue_milestones",
    "kpis",
    "stale",
    "score",
    "weights_version",
    "version",
    "created_at",
    "updated_at",
)


def row(p: ProposalOut) -> dict:
    return {
        "id": p.id,
        "title": p.title,
        "status": p.status.value,
        "lead_city_id": p.lead_city_id,
        "city_ids": LIST_SEPARATOR.join(p.city_ids),
        "themes": LIST_SEPARATOR.join(p.themes),
        "start_date": p.start_date.isoformat() if p.start_date else "",
        "end_date": p.end_date.isoformat() if p.end_date else "",
        "budget_amount": "" if p.budget is None else p.budget.amount,
        "budget_currency": "" if p.budget is None else p.budget.currency,
        "budget_public": str(p.budget_public).lower(),
        "coordinator_id": p.coordinator_id or "",
        "milestones": len(p.milestones),
        "overdue_milestones": LIST_SEPARATOR.join(p.overdue_milestones),
        "kpis": len(p.kpis),
        "stale": str(p.stale).lower(),
        "score": "" if p.score_record is None else p.score_record.score,
        "weights_version": "" if p.score_record is None else p.score_record.weights_version,
        "version": p.version,
        "created_at": p.created_at.isoformat(),
        "updated_at": p.updated_at.isoformat(),
    }


def csv_header() -> str:
    return csv_text(COLUMNS, [], header=True)


def csv_rows(proposals: list[ProposalOut]) -> str:
    """Proposals as CSV lines in COLUMNS, text cells that would start a spreadsheet formula defused."""
    return csv_text(COLUMNS, [row(p) for p in proposals])


def open_row(item: dict) -> dict:
    """A pilot zone as open data (`service.open_data`'s item) as a row of the Data Package's pilot-zones table."""
    cities, budget = item["cities"], item["budget"]
    return {
        "id": item["id"],
        "title": item["title"],
        "status": item["status"],
        "lead_city_id": item["lead_city_id"],
        "city_ids": LIST_SEPARATOR.join(c["id"] for c in cities),
        "city_names": LIST_SEPARATOR.join(c["name"] or "" for c in cities),
        "country_codes": LIST_SEPARATOR.join(c["country_code"] or "" for c in cities),
        "themes": LIST_SEPARATOR.join(item["themes"]),
        "start_date": item["start_date"].isoformat() if item["start_date"] else None,
        "end_date": item["end_date"].isoformat() if item["end_date"] else None,
        "budget_amount": budget["amount"] if budget else None,
        "budget_currency": budget["currency"] if budget else None,
    }
