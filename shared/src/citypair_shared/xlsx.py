"""Excel workbooks (XLSX) as imports and exports read and write them, in bounded memory (openpyxl).

Exports use openpyxl's write-only mode: rows go to a temporary file as they are appended, and the workbook is
saved to another, which is then sent a chunk at a time. Imports use its read-only mode, which parses the sheet
as it is iterated. Text that would start a formula is written defused (`citypair_shared.spreadsheet`), as in
CSV; a cell that holds a real formula is never evaluated: the import refuses that cell and says where it is.
"""

import asyncio
import io
import tempfile
import zipfile
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils.exceptions import InvalidFileException

from citypair_shared.spreadsheet import XLSX_MEDIA as XLSX_MEDIA  # where the routes have always found it
from citypair_shared.spreadsheet import FileRefused, defuse

SEND_CHUNK = 64 * 1024
# A workbook is a zip: refuse one whose parts would unpack to more than this (a "zip bomb" of a few MB).
MAX_UNPACKED_BYTES = 512 * 1024 * 1024


class BadWorkbook(FileRefused):
    """The file as a whole is not a workbook that can be read."""


def cell_value(value):
    """A value as a cell holds it: text without the control characters XML cannot hold (openpyxl refuses them, and
    an export whose answer had begun was cut short), then defused; None empty; numbers, booleans, dates as they are."""
    return defuse(ILLEGAL_CHARACTERS_RE.sub("", value)) if isinstance(value, str) else value


class WorkbookWriter:
    """A write-only workbook, filled a sheet and a batch of rows at a time (each row a mapping by column)."""

    def __init__(self):
        self._book = Workbook(write_only=True)

    def add_sheet(self, title: str, columns: Sequence[str]) -> "SheetWriter":
        sheet = self._book.create_sheet(title)
        sheet.append(list(columns))
        return SheetWriter(sheet, tuple(columns))

    def save(self) -> tempfile.SpooledTemporaryFile:
        """The workbook as a file, at its start (closing it deletes it)."""
        out = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)  # noqa: SIM115 - the caller closes it
        self._book.save(out)
        out.seek(0)
        return out


@dataclass
class SheetWriter:
    sheet: object
    columns: tuple[str, ...]

    def append(self, rows: Iterable[Mapping]) -> None:
        for row in rows:
            self.sheet.append([cell_value(row.get(column)) for column in self.columns])


async def stream_workbook(
    title: str, columns: Sequence[str], batches: AsyncIterator[Iterable[Mapping]]
) -> AsyncIterator[bytes]:
    """One sheet of `columns`, a batch of rows at a time, as the bytes of an XLSX file.

    The rows are written in worker threads (CPU work), so the event loop serves other requests meanwhile; the
    file is sent once written (a zip is complete only at its end), a chunk at a time.
    """
    book = WorkbookWriter()
    sheet = book.add_sheet(title, columns)
    async for batch in batches:
        await asyncio.to_thread(sheet.append, batch)
    saved = await asyncio.to_thread(book.save)
    try:
        while chunk := await asyncio.to_thread(saved.read, SEND_CHUNK):
            yield chunk
    finally:
        saved.close()


def workbook_bytes(sheets: Iterable[tuple[str, Sequence[str], Iterable[Mapping]]]) -> bytes:
    """A small workbook (a template, say) of (title, columns, rows) sheets, in memory."""
    book = WorkbookWriter()
    for title, columns, rows in sheets:
        book.add_sheet(title, columns).append(rows)
    with book.save() as saved:
        return saved.read()


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class SheetRow:
    number: int  # the row's number in the sheet (the header is row 1)
    cells: dict[str, str]  # column -> the cell as text ("" if empty); cells past the header under `rest`
    formulas: dict[str, tuple[str, str]] = field(default_factory=dict)  # column -> ("C5", "=SUM(…)"), each formula


def _text(value) -> str:
    """A cell's value as the text a CSV file would hold (whole numbers without ".0", booleans as true/false)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


class SheetReader:
    """The rows of one sheet of an uploaded workbook, read afresh (and parsed as they come) on each pass.

    The sheet is `sheet` if the workbook has one of that name, else its first. BadWorkbook if the file is not a
    workbook, has no such sheet or no header row.
    """

    def __init__(self, body: bytes, *, sheet: str, rest: str):
        self._body, self._sheet, self._rest = body, sheet, rest
        self._check_archive()

    def _check_archive(self) -> None:
        try:
            with zipfile.ZipFile(io.BytesIO(self._body)) as archive:
                unpacked = sum(info.file_size for info in archive.infolist())
        except zipfile.BadZipFile as exc:
            raise BadWorkbook(
                "not an XLSX workbook (an XLSX file is a zip archive; this is not one)", code="workbook_not_zip"
            ) from exc
        if unpacked > MAX_UNPACKED_BYTES:
            limit = MAX_UNPACKED_BYTES // 2**20
            raise BadWorkbook(f"the workbook unpacks to more than {limit} MB", code="workbook_too_large", max_mb=limit)

    def _open(self):
        try:
            book = load_workbook(io.BytesIO(self._body), read_only=True, data_only=False)
        except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
            raise BadWorkbook(
                f"not an XLSX workbook that can be read ({type(exc).__name__})", code="workbook_unreadable"
            ) from exc
        if not book.worksheets:
            raise BadWorkbook("the workbook has no sheet", code="workbook_no_sheet")
        names = [ws.title for ws in book.worksheets]
        return book, book[self._sheet] if self._sheet in names else book.worksheets[0]

    def header(self) -> list[str]:
        return next(self._rows(), (None, []))[1]

    def rows(self) -> Iterator[SheetRow]:
        """Each row under the header that holds anything (a sheet often ends with formatted empty rows)."""
        rows = self._rows()
        _, header = next(rows, (None, []))
        for number, cells in rows:
            values: dict[str, str] = {}
            formulas: dict[str, str] = {}
            rest: list[str] = []
            for index, cell in enumerate(cells):
                text = _text(cell.value)
                column = header[index] if index < len(header) else None
                if getattr(cell, "data_type", None) == "f":
                    formulas[column or self._rest] = (cell.coordinate, text)
                    text = ""
                if column is None:
                    if text:
                        rest.append(text)
                else:
                    values[column] = text
            if rest:
                values[self._rest] = rest  # type: ignore[assignment]: as csv.DictReader's restkey
            if any(values.values()) or formulas:
                yield SheetRow(number, values, formulas)

    def _rows(self) -> Iterator[tuple[int, list]]:
        book, sheet = self._open()
        try:
            first = True
            for number, cells in enumerate(sheet.iter_rows(), start=1):
                if first:  # the header, without the empty cells a sheet pads its rows with
                    first = False
                    header = [_text(c.value).strip() for c in cells]
                    while header and not header[-1]:
                        header.pop()
                    yield number, header
                else:
                    yield number, list(cells)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
            raise BadWorkbook(
                f"the sheet {sheet.title!r} cannot be read ({type(exc).__name__})",
                code="sheet_unreadable",
                sheet=sheet.title,
            ) from exc
        finally:
            book.close()
