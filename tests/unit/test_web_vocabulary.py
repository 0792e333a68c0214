"""The pages name every value of the shared vocabularies in every language they speak, and keep no copy of the values.

A status, decision or reason added to citypair_shared.vocabulary fails here until web names it; a list of the values
written into web's code or templates (as the board's columns once were) fails too.
"""

import ast
import re
from pathlib import Path
from typing import get_args

import pytest

from citypair_shared.vocabulary import (
    AcceptReason,
    CityStatus,
    Decision,
    DeclineReason,
    MatchStatus,
    Status,
    UnmatchedReason,
)
from citypair_web import i18n
from citypair_web.terms import LABELS

WEB = Path(i18n.__file__).parent
# LABELS kind → the vocabulary it names.
VOCABULARIES = {
    "city_status": get_args(CityStatus),
    "status": tuple(Status),
    "decision": get_args(Decision),
    "match_status": get_args(MatchStatus),
    "reason": (*DeclineReason, *AcceptReason),
    "unmatched_reason": tuple(UnmatchedReason),
}
# A string literal inside a Jinja expression or statement (`{{ ... }}`, `{% ... %}`), but for a message
# (`_('accept')` would be a text, not the decision).
JINJA = re.compile(r"{[{%](.*?)[}%]}", re.S)
QUOTED = re.compile(r"""(?<!_\()['"]([a-z_]+)['"]""")


@pytest.mark.parametrize("kind", VOCABULARIES)
@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_value_has_a_name_in_every_language(kind, lang):
    values = {str(value) for value in VOCABULARIES[kind]}
    assert set(LABELS[kind]) == values, f"{kind}: names missing or for values that are gone"
    unnamed = [value for value in values if i18n.term(kind, value, lang) == value]
    assert not unnamed, f"{kind} in {lang}: no name for {unnamed}"


def literals(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        tree = ast.parse(text)
        return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    return {word for expression in JINJA.findall(text) for word in QUOTED.findall(expression)}


# Every file of web but terms.py, whose names are keyed by the values.
SOURCES = sorted(path for path in [*WEB.rglob("*.py"), *WEB.rglob("*.html")] if path.name != "terms.py")


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(WEB)))
def test_web_holds_no_list_of_the_values(path):
    """Two values of one vocabulary written in one file are a copy of it (one alone is a use, e.g. `"decline"`)."""
    found = literals(path)
    copies = {kind: sorted(found & set(values)) for kind, values in VOCABULARIES.items()}
    assert not {kind: hits for kind, hits in copies.items() if len(hits) > 1}


def test_the_board_copy_this_replaced_would_be_caught(tmp_path):
    template = tmp_path / "board.html"
    template.write_text("{% for status in ['draft', 'submitted', 'under_review'] %}{{ status }}{% endfor %}")
    assert literals(template) >= {"draft", "submitted", "under_review"}
