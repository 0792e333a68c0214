"""CSV that a spreadsheet opens as data, never as formulas (OWASP, "CSV Injection").

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel, LibreOffice and
Google Sheets (`=HYPERLINK(…)`, `@SUM(…)`, DDE): an official who names their city so would run it on the
computer of whoever opens the export. Such a text cell is written with a leading `'`, which makes the
spreadsheet show the text as it is; `restore` takes it off again when the file is imported.
"""

import codecs
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


# What a file's ending says it holds, as the imports' media types (here, not in `xlsx`: a client naming a workbook
# need not load openpyxl).
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_BY_ENDING = {".csv": "text/csv", ".xlsx": XLSX_MEDIA, ".json": "application/json"}


# --------------------------------------------------------------------------- reading CSV as spreadsheets save it

# What Excel, LibreOffice and WPS save as "CSV": UTF-8 with or without a BOM, "Unicode text" (UTF-16 with a BOM),
# and, on Chinese systems, the ANSI code page (GBK, which GB18030 contains). Tried in this order.
BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
FALLBACK_ENCODINGS = ("utf-8", "gb18030")
DELIMITERS = ",;\t"  # comma; semicolon (Excel where the decimal separator is a comma); tab ("Unicode text")
SNIFF_CHARS = 64 * 1024
DECODE_CHUNK = 1024 * 1024


class FileRefused(ValueError):
    """A file refused whole: the API's English words, and the rule's `code` and the values they name (`params`),
    by which a page says it in its own language (as a service's rule: citypair_shared.problems.invalid)."""

    def __init__(self, message: str, code: str, **params):
        super().__init__(message)
        self.code, self.params = code, params

    def __reduce__(self):  # raised in the bulk worker process, answered in the service's
        return type(self), (str(self), self.code), {"params": self.params}


class UnreadableText(FileRefused):
    """The bytes are in none of the encodings spreadsheets save CSV in."""


def text_encoding(body: bytes) -> str:
    """The encoding of a CSV file: named by its BOM, else the first of UTF-8 and GB18030 that decodes all of it.

    Decoded a chunk at a time and thrown away: only the answer is kept, whatever the file's size.
    """
    for bom, encoding in BOMS:
        if body.startswith(bom):
            return encoding
    for encoding in FALLBACK_ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            for start in range(0, len(body), DECODE_CHUNK):
                decoder.decode(body[start : start + DECODE_CHUNK])
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise UnreadableText("the file is not text in UTF-8, UTF-16 (with a BOM) or GB18030", code="file_not_text")


def csv_delimiter(sample: str) -> str:
    """The delimiter of CSV text from its start: comma, semicolon or tab.

    csv.Sniffer's answer, if the header line agrees: column names hold no delimiter, so the right one splits the
    header into the most columns (a sniffer can be misled by data like "Ürümqi; old, town"). Else, or if the
    sniffer cannot tell, the one the header holds most of; a comma if it holds none (a single column).
    """
    header = sample.split("\n", 1)[0]
    counts = {d: header.count(d) for d in DELIMITERS}
    most = max(counts.values())
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        sniffed = None
    if sniffed is not None and counts[sniffed] == most:
        return sniffed
    return next((d for d in DELIMITERS if counts[d] == most), ",") if most else ","


def open_csv(body: bytes) -> tuple[io.TextIOWrapper, str]:
    """The CSV file as text (decoded as it is read) and its delimiter; UnreadableText if it is not text."""
    encoding = text_encoding(body)
    text = io.TextIOWrapper(io.BytesIO(body), encoding=encoding, newline="")
    delimiter = csv_delimiter(text.read(SNIFF_CHARS))
    text.seek(0)
    return text, delimiter
