"""Imports of CSV, XLSX and JSON files: the upload read as rows, its HTTP side, and the row-by-row report.

Shared by every import (cities, pilot zones): a service turns each record into its own fields and validates them.
A file is read a record at a time, as often as needed (a check of the whole file, then the import in batches), so
that no more than a batch of rows is ever in memory. A service checks the whole file before it writes a row (in its
bulk worker process, citypair_shared.bulk), and `refusing_bad_files` answers a file refused whole (413, 422
naming `body`; `import_media` the 415), so that such a file writes nothing.
"""

import asyncio
import csv
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_shared import strict_json
from citypair_shared.problems import Problem, field_error, invalid, problem_responses, rule_error
from citypair_shared.spreadsheet import FileRefused, UnreadableText, open_csv
from citypair_shared.xlsx import XLSX_MEDIA, BadWorkbook, SheetReader, workbook_bytes

Media = Literal["csv", "xlsx", "json"]
IMPORT_MAX_BYTES = 20 * 1024 * 1024  # the gateway's limit for imports (CITYPAIR_GATEWAY_MAX_IMPORT)
IMPORT_MEDIA = {"text/csv": "csv", "application/json": "json", XLSX_MEDIA: "xlsx"}
EXTRA_CELLS = "cells past the last column"  # as csv.DictReader's restkey: validation names it


class BadFile(FileRefused):
    """The file as a whole cannot be read (not one row: the whole thing)."""

    @classmethod
    def of(cls, exc: FileRefused) -> "BadFile":
        """The refusal of a part (the text, the workbook) as the file's, its code and values kept."""
        return cls(str(exc), code=exc.code, **exc.params)


class TooManyRows(ValueError):
    def __init__(self, limit: int):
        super().__init__(f"an import takes at most {limit:,} rows; split the file")
        self.limit = limit

    def __reduce__(self):  # raised in the bulk worker process, answered in the service's
        return type(self), (self.limit,)


def formula_errors(formulas: dict[str, tuple[str, str]]) -> tuple[dict, ...]:
    """A sheet row's formula cells as row errors: an import never evaluates a formula."""
    return tuple(
        rule_error(
            column,
            f"cell {cell} holds a formula ({formula[:100]}); an import takes values only: paste its value",
            code="cell_formula",
            cell=cell,
            formula=formula[:100],
        )
        for column, (cell, formula) in formulas.items()
    )


def _checked_header(header: list[str] | None, what: str, required: str) -> None:
    if header and any("\x00" in column for column in header if isinstance(column, str)):
        raise BadFile("the header contains the NUL character (U+0000)", code="header_nul")
    if not header or required not in header:
        message = f"{what} needs a header row with at least a `{required}` column"
        raise BadFile(message, code="header_missing_column", column=required)
    if repeated := sorted({c for c in header if header.count(c) > 1}):
        raise BadFile(
            f"the header repeats the column {repeated[0]!r}", code="header_repeats_column", column=repeated[0]
        )


# (line, value, errors): the line is the CSV line or sheet row (the header is 1), or the JSON array position (from
# 1); the value a CSV or sheet row as {column: text}, or a JSON item as it is; errors are a row's formula cells.
Record = tuple[int, object, tuple[dict, ...]]


class Upload:
    """The rows of an uploaded CSV, XLSX or JSON file, read afresh on each pass over it.

    A service's subclass names the `sheet` an XLSX file is read from (else its first), the `json_key` a JSON array
    may stand under (else the file is the array), the `required` column of a CSV or sheet header, and turns each
    record into its own import row (`row`).
    """

    sheet: str
    json_key: str
    required: str

    def __init__(self, body: bytes, media: Media):
        self._body, self.media = body, media
        self._text: str | None = None

    def row(self, line: int, value: dict, errors: tuple[dict, ...]):
        """The service's import row of a record: a CSV or sheet row's cells, or a JSON item (one that is no object
        under `__row__`, which validation refuses); `errors` are found before validation (formula cells)."""
        raise NotImplementedError

    def __iter__(self) -> Iterator:
        for line, value, errors in self.records():
            yield self.row(line, value if isinstance(value, dict) else {"__row__": value}, errors)

    def records(self) -> Iterator[Record]:
        if self.media == "csv":
            for line, row in self._csv_records():
                yield line, row, ()
        elif self.media == "xlsx":
            for row in self._xlsx_records():
                yield row.number, row.cells, formula_errors(row.formulas)
        else:
            for position, item in self._json_items():
                yield position, item, ()

    def check(self, max_rows: int) -> int:
        """Read the whole file once: its row count, BadFile if it cannot be read, TooManyRows past `max_rows`."""
        count = 0
        records = {"csv": self._csv_records, "xlsx": self._xlsx_records, "json": self._json_items}[self.media]
        for count, _ in enumerate(records(), start=1):
            if count > max_rows:
                raise TooManyRows(max_rows)
        return count

    def _csv_records(self) -> Iterator[tuple[int, dict]]:
        try:
            text, delimiter = open_csv(self._body)
        except UnreadableText as exc:
            raise BadFile.of(exc) from exc
        reader = csv.DictReader(text, restkey=EXTRA_CELLS, delimiter=delimiter)
        try:
            _checked_header(reader.fieldnames, "a CSV import", self.required)
            for row in reader:
                # no text may hold U+0000 (PostgreSQL cannot store it; see citypair_shared.deps)
                if any("\x00" in v for v in row.values() if isinstance(v, str)):
                    line = reader.line_num
                    raise BadFile(
                        f"the file contains the NUL character (U+0000) on line {line}", code="file_nul", line=line
                    )
                yield reader.line_num, row
        except csv.Error as exc:
            raise BadFile(f"not CSV (line {reader.line_num}): {exc}", code="not_csv", line=reader.line_num) from exc
        except UnicodeDecodeError as exc:
            line = reader.line_num
            raise BadFile(
                f"the file is not text in its encoding (after line {line})", code="file_encoding_broken", line=line
            ) from exc

    def _xlsx_records(self) -> Iterator:
        try:
            sheet = SheetReader(self._body, sheet=self.sheet, rest=EXTRA_CELLS)
            what = f"an XLSX import (its `{self.sheet}` sheet, or its first)"
            _checked_header(sheet.header(), what, self.required)
            for row in sheet.rows():
                if any("\x00" in v for v in row.cells.values() if isinstance(v, str)):
                    message = f"the sheet contains the NUL character (U+0000) in row {row.number}"
                    raise BadFile(message, code="sheet_nul", row=row.number)
                yield row
        except BadWorkbook as exc:
            raise BadFile.of(exc) from exc

    def _json_items(self) -> Iterator[tuple[int, object]]:
        if self._text is None:
            try:
                self._text = self._body.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise BadFile("the file is not UTF-8", code="file_not_utf8") from exc
            self._body = b""  # the text is what is read from now on
        try:
            for loc, item in strict_json.array_items(self._text, under=self.json_key):
                yield loc[-1] + 1, item
        except ValueError as exc:
            if isinstance(exc, strict_json.BadJson):
                raise
            message = f'a JSON import is an array of rows (or {{"{self.json_key}": [...]}})'
            raise BadFile(message, code="json_not_array", key=self.json_key) from exc


# --------------------------------------------------------------------------- HTTP

U = TypeVar("U", bound=Upload)


async def read_body(request: Request) -> bytes:
    """The request's body, 413 past IMPORT_MAX_BYTES (read no further)."""
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > IMPORT_MAX_BYTES:
            raise Problem(413, "Request body too large", f"imports are limited to {IMPORT_MAX_BYTES // 2**20} MB")
    return bytes(body)


def refused(exc: FileRefused) -> Problem:
    """A file refused whole as a 422 naming `body`, with the refusal's code and values."""
    return invalid("body", str(exc), code=exc.code, **exc.params)


def too_many_rows(exc: TooManyRows) -> Problem:
    return Problem(
        413,
        "Too many rows",
        str(exc),
        type_="/problems/too-many-rows",
        max_rows=exc.limit,
        errors=[{"field": "body", "message": str(exc)}],
    )


def import_media(request: Request) -> Media:
    """The uploaded file's format, from its Content-Type (415 if it is none of the three)."""
    content_type = request.headers.get("content-type", "")
    media = next((m for prefix, m in IMPORT_MEDIA.items() if content_type.startswith(prefix)), None)
    if media is None:
        detail = f"send text/csv, application/json or {XLSX_MEDIA}"
        raise Problem(415, "Unsupported media type", detail, type_="/problems/media-type")
    return media


@contextmanager
def refusing_bad_files() -> Iterator[None]:
    """A file that cannot be imported as a whole answers 413 or 422, naming where."""
    try:
        yield
    except TooManyRows as exc:
        raise too_many_rows(exc) from exc
    except strict_json.BadJson as exc:  # the rules every JSON body is held to (citypair_shared.strict_json)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors]) from exc
    except BadFile as exc:
        raise refused(exc) from exc


def import_route(csv_schema: dict) -> dict:
    """The route's arguments of an import: its report, its problems, its body as CSV (`csv_schema`: what the file
    must start with), a JSON array or an XLSX workbook."""
    return {
        "response_model": ImportReport,
        "responses": problem_responses(401, 403, 413, 415, 422),
        "openapi_extra": {
            "requestBody": {
                "content": {
                    "text/csv": {"schema": csv_schema},
                    "application/json": {"schema": {"type": "array", "items": {}}},
                    XLSX_MEDIA: {"schema": {"type": "string", "format": "binary"}},
                },
                "required": True,
            }
        },
    }


AllOrNothing = Annotated[bool, Query(description="Keep nothing if any row is bad")]


# --------------------------------------------------------------------------- templates

LIST_SEPARATOR = "|"  # between the items of a list in one cell
DESCRIPTION_COLUMNS = ("column", "type", "required", "example", "description")  # a template's `columns` sheet
EXCEL_BOM = "\ufeff"  # before a CSV with `bom=true`: Excel then reads it as UTF-8 (else as the ANSI code page)
Bom = Annotated[bool, Query(description="Start the CSV with a byte-order mark, so that Excel reads it as UTF-8")]


def plain_schema(schema: dict, defs: dict) -> dict:
    """The schema with references followed and `null` left out of a choice (an empty cell is null)."""
    if ref := schema.get("$ref"):
        return plain_schema(defs[ref.rsplit("/", 1)[-1]], defs)
    if choices := [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]:
        return {**schema, **plain_schema(choices[0], defs)}
    return schema


def _type_text(schema: dict, defs: dict) -> str:
    schema = plain_schema(schema, defs)
    if schema.get("type") == "array":
        return f"list of {_type_text(schema['items'], defs)}, separated by {LIST_SEPARATOR}"
    text = schema.get("type", "string")
    if schema.get("format") == "date":
        text += " (a date: YYYY-MM-DD)"
    if enum := schema.get("enum"):
        text += f" (one of: {', '.join(enum)})" if len(enum) <= 20 else f" (one of {len(enum)} codes)"
    bounds = [f"{k} {schema[k]}" for k in ("minimum", "maximum", "minLength", "maxLength") if k in schema]
    return text + (f"; {', '.join(bounds)}" if bounds else "")


def describe_columns(
    model: type[BaseModel], columns: Sequence[str], example: Mapping, field_of: Callable[[str, dict, dict], dict]
) -> list[dict]:
    """A template's `columns` sheet: each column's type, whether it is required, an example and a description, read
    from `model`'s JSON schema (so that a template cannot drift from what an import accepts); `field_of(column,
    properties, defs)` is the schema of the field a column fills."""
    schema = model.model_json_schema()
    defs, properties, required = schema.get("$defs", {}), schema["properties"], set(schema.get("required", ()))
    out = []
    for column in columns:
        field = field_of(column, properties, defs)
        plain = plain_schema(field, defs)
        out.append(
            {
                "column": column,
                "type": _type_text(field, defs),
                "required": "yes" if column in required else "no",
                "example": example.get(column, ""),
                "description": plain.get("description") or field.get("description") or plain.get("title", ""),
            }
        )
    return out


def template_workbook(sheet: str, columns: Sequence[str], example: Mapping, descriptions: list[dict]) -> bytes:
    """An import's XLSX template: its sheet (the header and one example row) and a `columns` sheet describing each."""
    return workbook_bytes([(sheet, columns, [example]), ("columns", DESCRIPTION_COLUMNS, descriptions)])


async def template_response(
    format: str, *, bom: bool, name: str, csv_template: Callable[[], str], xlsx_template: Callable[[], bytes]
) -> Response:
    """An import template as a download, `<name>-template.csv` or `.xlsx` (written in a worker thread)."""
    if format == "csv":
        return Response(
            (EXCEL_BOM if bom else "") + csv_template(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}-template.csv"'},
        )
    return Response(
        await asyncio.to_thread(xlsx_template),
        media_type=XLSX_MEDIA,
        headers={"Content-Disposition": f'attachment; filename="{name}-template.xlsx"'},
    )


# --------------------------------------------------------------------------- the report


class ImportRowError(BaseModel):
    field: str = Field(description="The column (a CSV or sheet's) or the field's dotted path (a JSON row's)")
    message: str = Field(description="Why, in English")
    type: str | None = Field(
        None,
        description="A machine-readable kind: the schema check's (`missing`, …), the rule's code (`unknown_country`, "
        "`cell_formula`, …), or the type of the problem that refused the row (`/problems/forbidden`, …)",
    )
    params: dict[str, Any] | None = Field(
        None, description="The values the message names, by their names in its `type` (e.g. `value`, `cell`)"
    )


# What an import did with a row: `not imported` is a good row kept out by a bad one (all or nothing).
ImportAction = Literal["created", "updated", "unchanged", "rejected", "not imported"]


class ImportRow(BaseModel):
    line: int = Field(description="CSV line or sheet row (the header is 1), or JSON array position (from 1)")
    id: str | None = None
    action: ImportAction = Field(description="created, updated, unchanged, rejected, or not imported (all or nothing)")
    errors: list[ImportRowError] = []


class ImportReport(BaseModel):
    accepted: int
    rejected: int
    all_or_nothing: bool
    committed: bool
    rows: list[ImportRow]


# --------------------------------------------------------------------------- validating and committing

R = TypeVar("R")  # an import row: its `fields` as given and its `errors` found before validation (formula cells)


def row_errors(exc: ValidationError) -> list[dict]:
    """A row's validation errors as its report names them: each field's dotted path, the message, its type and the
    values the message names (as a problem's field errors carry them)."""
    # a problem's field error, but for where: a row's loc is its own (no `body` in front), and empty for the row
    return [
        {**field_error(e), "field": ".".join(str(p) for p in e["loc"]) or "row"} for e in exc.errors(include_url=False)
    ]


def validated(rows: Iterator[R], count: int, model_of: Callable[[R], type[BaseModel]]) -> list[tuple[R, object]]:
    """The next `count` rows, each with its model (`model_of(row)`) or its errors as a list (CPU work: run it in a
    worker thread). Lax: a CSV cell is text ("5") where the API's JSON must carry a number."""
    batch: list[tuple[R, object]] = []
    for row in itertools.islice(rows, count):
        if row.errors:  # type: ignore[attr-defined]
            batch.append((row, list(row.errors)))  # type: ignore[attr-defined]
            continue
        try:
            batch.append((row, model_of(row).model_validate(row.fields, strict=False)))  # type: ignore[attr-defined]
        except ValidationError as exc:
            batch.append((row, row_errors(exc)))
    return batch


async def finish(session: AsyncSession, report: list[ImportRow], *, all_or_nothing: bool) -> ImportReport:
    """Commit the rows an import wrote (flushed, not committed), or, if `all_or_nothing` and a row was rejected,
    roll them all back; the report, by line."""
    report.sort(key=lambda r: r.line)
    rejected = sum(r.action == "rejected" for r in report)
    commit = not (all_or_nothing and rejected)
    if commit:
        await session.commit()
    else:
        await session.rollback()
        for row in report:
            if row.action != "rejected":
                row.id, row.action = None, "not imported"
    return ImportReport(
        accepted=len(report) - rejected if commit else 0,
        rejected=rejected,
        all_or_nothing=all_or_nothing,
        committed=commit,
        rows=report,
    )
