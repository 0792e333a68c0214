"""Every rule a service checks itself names its code and the values its message names (`type`, `params`), and the
pages say each code in every language: a new code without a sentence, or a sentence naming a value the service
does not send, fails here."""

import ast
import re
import string
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from citypair_identity.passwords import WEAKNESSES
from citypair_pilot_zones import importing
from citypair_pilot_zones.schemas import ProposalCreate
from citypair_profiles.schemas import CityUpdate
from citypair_profiles.tabular import Upload as CityUpload
from citypair_shared.auth import forbidden
from citypair_shared.problems import Problem, field_error, invalid
from citypair_shared.upload import BadFile, formula_errors, refused
from citypair_shared.versions import check_if_match
from citypair_web import forms, i18n

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("shared/src/**/*.py")]
# problems.invalid and rule_error (an import row's error too), and identity's RequestValidationError of one field
RAISERS = ("invalid", "wrong_field", "rule_error")
REFUSALS = ("BadFile", "BadWorkbook", "UnreadableText")  # an import's file refused whole (spreadsheet.FileRefused)
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
SCRIPTS = {"zh": ("\u4e00", "\u9fff"), "ru": ("\u0400", "\u04ff"), "ar": ("\u0600", "\u06ff")}


def _name(call: ast.Call) -> str:
    return getattr(call.func, "id", getattr(call.func, "attr", ""))


def raised_codes() -> dict[str, set[str]]:
    """{code: the names of the values sent with it}, from every call that raises a coded field error."""
    codes: dict[str, set[str]] = {code: set(_fields(template)) for code, template in WEAKNESSES.items()}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            if _name(node) in RAISERS + REFUSALS:
                keywords = {k.arg: k.value for k in node.keywords}
                if isinstance(keywords.get("code"), ast.Constant):
                    codes.setdefault(keywords["code"].value, set()).update(k for k in keywords if k != "code")
            elif _name(node) == "PydanticCustomError" and isinstance(node.args[0], ast.Constant):
                params = node.args[2] if len(node.args) > 2 else None
                names = {k.value for k in params.keys} if isinstance(params, ast.Dict) else set()
                codes.setdefault(node.args[0].value, set()).update(names)
    return codes


def _fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


CODES = raised_codes()


def test_the_scan_finds_the_rules():
    # The scan itself: a rule of each service and of the shared library, and each kind of call.
    assert {"unknown_time_zone", "end_before_start", "unknown_city", "own_partner", "bad_unsubscribe_link"} <= set(
        CODES
    )
    assert {"idempotency_key_reused", "password_too_short", "password_not_current", "date_parsing"} <= set(CODES)
    assert CODES["unknown_city"] == {"city_id"} and CODES["indicator_out_of_range"] == {"indicator", "low", "high"}
    assert {"file_not_text", "workbook_no_sheet", "columns_missing"} <= set(CODES)
    assert CODES["header_missing_column"] == {"column"} and CODES["sheet_unreadable"] == {"sheet"}
    # an import row's, each service's and the shared one
    assert CODES["cell_formula"] == {"cell", "formula"} and CODES["ids_name_different_cities"] == {"city_ids"}
    assert "version_not_whole_number" in CODES


def test_every_refused_file_names_its_code():
    # A refusal without a code of its own must carry over the one it wraps (`BadFile.of`).
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and _name(node) in REFUSALS:
                assert any(k.arg == "code" for k in node.keywords), f"{path.name}:{node.lineno}: name its code"


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_code_has_a_sentence_in_every_language(code):
    assert code in forms.RULES or code in forms.VALIDATION, f"{code}: add its sentence to citypair_web.forms.RULES"
    english = forms.RULES.get(code) or forms.VALIDATION[code]
    named = set(PLACEHOLDER.findall(english))
    assert named <= CODES[code], f"{code}: the sentence names {named - CODES[code]}, which the service never sends"
    _assert_translated(english, named)


def _assert_translated(english: str, named: set[str] = frozenset()) -> None:
    """Said in each catalog's own script, naming the same values."""
    for lang, (low, high) in SCRIPTS.items():
        text = i18n.translations(lang).gettext(english)
        assert text != english and any(low <= ch <= high for ch in text), (english, lang, text)
        assert set(PLACEHOLDER.findall(text)) == named, (english, lang, text)


def test_every_sentence_is_of_a_code_a_service_raises():
    assert set(forms.RULES) <= set(CODES), set(forms.RULES) - set(CODES)


# Problem types as the services and the gateway write them (web only reads them: its PROBLEMS would find itself).
PROBLEM_TYPE = re.compile(r'"(/problems/[a-z-]+)"')
TYPE_SOURCES = [
    *(p for p in SOURCES if "services/web/" not in p.as_posix()),
    *ROOT.glob("deploy/caddy/*.caddy"),
]
TYPES = sorted({t for path in TYPE_SOURCES for t in PROBLEM_TYPE.findall(path.read_text(encoding="utf-8"))})


def test_the_scan_finds_the_problem_types():
    # a type_= keyword, a module constant, a handler's argument, and the gateway's own answer
    assert {"/problems/stale", "/problems/idempotency-in-progress", "/problems/conflict"} <= set(TYPES)
    assert "/problems/upstream-unavailable" in TYPES


@pytest.mark.parametrize("type_", TYPES)
def test_every_problem_type_has_a_sentence_in_every_language(type_):
    assert type_ in forms.PROBLEMS, f"{type_}: add its sentence to citypair_web.forms.PROBLEMS"
    _assert_translated(forms.PROBLEMS[type_])


def test_every_problem_sentence_is_of_a_type_raised():
    assert set(forms.PROBLEMS) <= set(TYPES), set(forms.PROBLEMS) - set(TYPES)


def test_a_problem_naming_no_field_is_said_in_the_page_language():
    stale = {"type": "/problems/stale", "detail": "the proposal changed since you read it (now version 4); reload"}
    assert forms.problem_message(stale, "ru") == (
        "За это время кто-то другой изменил эти данные. Обновите страницу и внесите изменение снова."
    )
    assert forms.problem_message(stale, "en") == forms.PROBLEMS["/problems/stale"]
    # a type new to the pages, or none: the caller keeps the API's words
    assert forms.problem_message({"type": "/problems/brand-new", "detail": "x"}, "zh") is None
    assert forms.problem_message({"type": "about:blank", "detail": "x"}, "zh") is None


def _page(errors: list[dict], lang: str) -> list[str]:
    return [forms.error_message(field_error(e), lang) for e in errors]


def test_a_schema_rule_reaches_the_page_in_its_language():
    errors = []
    for body in ({"timezone": "Mars/Base"}, {"indicators": {"internet_users_pct": {"value": 150.0, "year": 2024}}}):
        with pytest.raises(ValidationError) as caught:
            CityUpdate.model_validate(body)
        errors += caught.value.errors()
    problem = [field_error(e) for e in errors]
    assert problem[0] == {
        "field": "timezone",
        "message": "'Mars/Base' is not an IANA time zone",
        "type": "unknown_time_zone",
        "params": {"value": "Mars/Base"},
    }
    assert _page(errors, "zh") == ["“Mars/Base”不是 IANA 时区。", "“互联网用户占比”的值必须在 0–100 之间。"]
    assert _page(errors, "en") == [
        "“Mars/Base” is not an IANA time zone.",
        "Internet users must be within 0–100.",
    ]


def test_a_proposal_ending_before_it_starts_is_said_in_russian():
    body = {"title": "x", "city_ids": ["a", "b"], "start_date": "2028-01-01", "end_date": "2027-01-01"}
    with pytest.raises(ValidationError) as caught:
        ProposalCreate.model_validate(body)
    assert _page(caught.value.errors(), "ru") == ["Дата окончания раньше даты начала."]


def test_a_service_rule_names_its_code_and_values():
    problem = invalid("city_ids[1]", "unknown city 'x'", code="unknown_city", city_id="x")
    assert problem.extra["errors"] == [
        {"field": "city_ids[1]", "message": "unknown city 'x'", "type": "unknown_city", "params": {"city_id": "x"}}
    ]
    assert forms.error_message(problem.extra["errors"][0], "ar") == "لا توجد مدينة بالمعرّف «x»."
    # A rule without a code keeps the old shape: the API's words in every language.
    bare = invalid("body", "line 3: not UTF-8").extra["errors"][0]
    assert bare == {"field": "body", "message": "line 3: not UTF-8"}
    assert forms.error_message(bare, "zh") == "line 3: not UTF-8"


def test_a_refused_file_is_said_in_the_page_language():
    with pytest.raises(BadFile) as caught:
        list(CityUpload(b"name,name\nX,Y\n", "csv"))
    (error,) = refused(caught.value).extra["errors"]
    assert error == {
        "field": "body",
        "message": "the header repeats the column 'name'",
        "type": "header_repeats_column",
        "params": {"column": "name"},
    }
    assert forms.error_message(error, "zh") == "标题行中“name”列重复出现。"
    with pytest.raises(BadFile) as caught:
        list(CityUpload(b"PK not a zip", "xlsx"))
    assert caught.value.code == "workbook_not_zip"  # the workbook's refusal, carried over
    assert forms.error_message(refused(caught.value).extra["errors"][0], "ru").startswith("Файл не является книгой")


def test_an_import_rows_own_rule_is_said_in_the_page_language():
    (formula,) = formula_errors({"population": ("C2", "=1+1")})
    assert forms.error_message(formula, "zh") == "单元格 C2 含有公式（=1+1）；导入只接受值：请改为粘贴其值。"
    assert forms.error_message(formula, "en") == (
        "Cell C2 holds a formula (=1+1); an import takes values only: paste its value."
    )


def test_a_pilot_zone_row_refused_as_a_request_would_be_is_said_as_its_rule_or_problem():
    not_mine = forbidden("only an official…", errors=[{"field": "city_ids", "message": "none of these is yours"}])
    unknown = invalid("city_ids[1]", "unknown city 'x'", code="unknown_city", city_id="x")
    with pytest.raises(Problem) as stale:
        check_if_match(version=4, if_match='"3"', what="proposal")
    errors = [e for problem in (not_mine, unknown, stale.value) for e in importing._problem_errors(problem)]
    assert [(e["field"], e["type"], e.get("params")) for e in errors] == [
        ("city_ids", "/problems/forbidden", None),  # a field it names, without a code: the problem's type
        ("city_ids[1]", "unknown_city", {"city_id": "x"}),  # a rule's code and values win
        ("version", "/problems/stale", None),  # a problem naming no field: the column it is about
    ]
    assert [forms.error_message(e, "ru") for e in errors] == [
        i18n.gettext(forms.PROBLEMS["/problems/forbidden"], "ru"),
        "Нет города с идентификатором «x».",
        i18n.gettext(forms.PROBLEMS["/problems/stale"], "ru"),
    ]


def test_lists_and_reasons_are_said_in_the_page_language():
    error = {"field": "reason", "message": "…", "type": "reason_not_allowed"}
    error["params"] = {"decision": "accept", "allowed": ["shared_priorities", "corridor"]}
    assert forms.error_message(error, "en") == "Choose one of these reasons: Shared priorities and Same corridor."
    said = forms.error_message(error, "zh")
    assert i18n.term("reason", "corridor", "zh") in said and "corridor" not in said


def test_params_carry_only_json_values():
    class Ranged(BaseModel):
        n: int

        @field_validator("n")
        @classmethod
        def _plain(cls, value):
            raise ValueError("a plain ValueError")  # pydantic puts the exception itself in ctx["error"]

    with pytest.raises(ValidationError) as caught:
        Ranged.model_validate({"n": 1})
    (error,) = [field_error(e) for e in caught.value.errors()]
    assert error == {"field": "n", "message": "Value error, a plain ValueError", "type": "value_error"}
    with pytest.raises(ValidationError) as caught:
        CityUpdate.model_validate({"name": "x" * 201})
    assert field_error(caught.value.errors()[0])["params"] == {"max_length": 200}


def test_a_code_the_pages_do_not_know_or_a_missing_value_keeps_the_apis_words():
    assert forms.error_message({"field": "f", "message": "new rule", "type": "brand_new", "params": {}}, "zh") == (
        "new rule"
    )
    no_value = {"field": "timezone", "message": "'X' is not an IANA time zone", "type": "unknown_time_zone"}
    assert forms.error_message(no_value, "ru") == "'X' is not an IANA time zone"
