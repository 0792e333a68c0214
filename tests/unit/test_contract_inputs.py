"""Inputs take what their schema admits, and only that (`citypair_shared.contract`): the disagreements
schemathesis found between what the OpenAPI document says and what the models did."""

import re
from datetime import date
from typing import Annotated

import jsonschema_rs
import pytest
from pydantic import Field, TypeAdapter, ValidationError

from citypair_shared.contract import EMAIL_PATTERN, URL_PATTERN, VISIBLE_TEXT_PATTERN, CalendarDate, json_integer


def accepts(adapter: TypeAdapter, value) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(("value", "taken"), [(2, True), (2.0, True), (2.5, False), ("2", False), (True, False)])
def test_an_integer_is_a_number_without_a_fraction(value, taken):
    # JSON Schema's `integer` admits 2.0 (the same number as 2): StrictInt refused it.
    assert accepts(TypeAdapter(json_integer(ge=0, le=10) | None), value) is taken


def test_an_integers_bounds_stay_in_the_schema():
    schema = TypeAdapter(json_integer(ge=0, le=10) | None).json_schema()
    assert {"type": "integer", "minimum": 0, "maximum": 10} in schema["anyOf"]


@pytest.mark.parametrize(
    ("value", "taken"), [("2026-11-30", True), (0, False), ("86400", False), ("2026-11-30T00:00:00", False)]
)
def test_a_date_is_yyyy_mm_dd_text(value, taken):
    # `format: date`; pydantic alone read 0 and "86400" as 1970 dates, and a datetime as its day.
    assert accepts(TypeAdapter(CalendarDate), value) is taken
    assert TypeAdapter(CalendarDate).validate_python(date(2026, 11, 30)) == date(2026, 11, 30)


@pytest.mark.parametrize("pattern", [EMAIL_PATTERN, URL_PATTERN, VISIBLE_TEXT_PATTERN])
@pytest.mark.parametrize("character", ["\x85", "\ufeff", "\x1c", "\u3000", " ", "\t"])
def test_whitespace_means_the_same_to_the_api_the_schema_and_python(pattern, character):
    # `\s` did not: ECMA-262's (JSON Schema's) leaves out U+0085 and takes U+FEFF, pydantic's the other way
    # round, and Python's takes U+001C too.
    text = {EMAIL_PATTERN: f"a{character}b@example.org", URL_PATTERN: f"https://a{character}b"}.get(pattern, character)
    api = accepts(TypeAdapter(Annotated[str, Field(pattern=pattern)]), text)
    assert api == jsonschema_rs.is_valid({"type": "string", "pattern": pattern}, text) == bool(re.search(pattern, text))
