"""CSV that a spreadsheet opens as data, never as formulas (OWASP, "CSV Injection").

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel, LibreOffice and
Google Sheets (`=HYPERLINK(…)`, `@SUM(…)`, DDE): an official who names their city so would run it on the
computer of whoever opens the export. Such a text cell is written with a leading `'`, which makes the
spreadsheet show the text as it is; `restore` takes it off again when the file is imported.
"""

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defuse(value):
    """A text cell as a spreadsheet should show it: `'` before one that would start a formula.

    Also before one that is already `'` + a formula start, so that `restore` gives back exactly what was here.
    Numbers stay numbers (a negative one is no formula).
    """
    if isinstance(value, str) and value.lstrip("'").startswith(FORMULA_STARTS):
        return "'" + value
    return value


def restore(cell: str) -> str:
    """The text that `defuse` was given (a cell that was not defused is returned as it is)."""
    if cell.startswith("'") and cell.lstrip("'").startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


def csv_text(columns: Sequence[str], rows: Iterable[Mapping], *, header: bool = False) -> str:
    """Rows as CSV text, their cells in `columns` order (missing ones empty), every text cell defused."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(columns)
    writer.writerows([defuse(row.get(column, "")) for column in columns] for row in rows)
    return out.getvalue()
