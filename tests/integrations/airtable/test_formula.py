"""Formulas from caller values: a reference tokenizer of Airtable's formula syntax must read
back exactly the names and values that went in, whatever quotes, braces or backslashes they
hold, so no value can end its literal early and smuggle in formula code."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxflow.integrations.airtable.formula import (
    MatchValue,
    all_of,
    field_ref,
    match_formula,
    string_literal,
    value_literal,
)

Token = tuple[str, str]

_STRING_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_FIELD_ESCAPES = {"\\": "\\", "}": "}"}
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_NAME = re.compile(r"[A-Z]+")


def tokenize(formula: str) -> list[Token]:
    """Airtable's formula tokens, as much of them as our formulas use; raises on anything else
    (an unknown escape, an unterminated literal), so a test fails rather than guesses."""
    tokens: list[Token] = []
    position = 0
    while position < len(formula):
        char = formula[position]
        if char == " ":
            position += 1
        elif char in "(),=":
            tokens.append(("punct", char))
            position += 1
        elif char == '"':
            text, position = _delimited(formula, position + 1, '"', _STRING_ESCAPES)
            tokens.append(("string", text))
        elif char == "{":
            text, position = _delimited(formula, position + 1, "}", _FIELD_ESCAPES)
            tokens.append(("field", text))
        elif match := _NUMBER.match(formula, position):
            tokens.append(("number", match.group()))
            position = match.end()
        elif match := _NAME.match(formula, position):
            tokens.append(("name", match.group()))
            position = match.end()
        else:
            raise ValueError(f"unexpected {char!r} at {position}")
    return tokens


def _delimited(
    formula: str, position: int, closing: str, escapes: dict[str, str]
) -> tuple[str, int]:
    """The decoded text of a literal or reference, and the position just after its end."""
    decoded: list[str] = []
    while position < len(formula):
        char = formula[position]
        if char == closing:
            return "".join(decoded), position + 1
        if char == "\\":
            escaped = formula[position + 1 : position + 2]
            if escaped not in escapes:
                raise ValueError(f"unknown escape \\{escaped} at {position}")
            decoded.append(escapes[escaped])
            position += 2
        else:
            decoded.append(char)
            position += 1
    raise ValueError("unterminated")


def value_tokens(value: MatchValue) -> list[Token]:
    if value is None:
        return [("name", "BLANK"), ("punct", "("), ("punct", ")")]
    if isinstance(value, bool):
        return [("name", "TRUE" if value else "FALSE"), ("punct", "("), ("punct", ")")]
    if isinstance(value, int | float):
        return [("number", value_literal(value))]
    return [("string", value)]


# Text that leans towards the characters that matter, without excluding any others.
tricky_text = st.text(
    alphabet=st.one_of(st.sampled_from("\"\\{}(),=\n'"), st.characters()), max_size=40
)
match_values = st.one_of(
    tricky_text,
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)


@given(tricky_text)
def test_a_string_literal_reads_back_as_the_text_and_ends_where_it_should(text: str) -> None:
    formula = f"{string_literal(text)} = 1"
    assert tokenize(formula) == [("string", text), ("punct", "="), ("number", "1")]


@given(tricky_text.filter(bool))
def test_a_field_reference_reads_back_as_the_name(name: str) -> None:
    assert tokenize(f"{field_ref(name)} = 1") == [
        ("field", name),
        ("punct", "="),
        ("number", "1"),
    ]


@given(st.dictionaries(tricky_text.filter(bool), match_values, min_size=1, max_size=4))
def test_match_formula_has_exactly_the_intended_structure(
    match: dict[str, MatchValue],
) -> None:
    conditions = [
        [("field", name), ("punct", "="), *value_tokens(value)] for name, value in match.items()
    ]
    if len(conditions) == 1:
        expected = conditions[0]
    else:
        expected = [("name", "AND"), ("punct", "(")]
        for index, condition in enumerate(conditions):
            expected += ([("punct", ",")] if index else []) + condition
        expected.append(("punct", ")"))
    assert tokenize(match_formula(match)) == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_are_plain_decimals_of_the_same_value(number: float) -> None:
    literal = value_literal(number)
    assert _NUMBER.fullmatch(literal)
    assert Decimal(literal) == Decimal(repr(number))


def test_examples_read_as_airtable_documents_them() -> None:
    assert match_formula({"Email": 'ana"@x.com'}) == '{Email} = "ana\\"@x.com"'
    assert match_formula({"A": "x", "B": 3}) == 'AND({A} = "x", {B} = 3)'
    assert match_formula({"Done": True, "Notes": None}) == "AND({Done} = TRUE(), {Notes} = BLANK())"
    assert field_ref("Odd } name") == "{Odd \\} name}"
    assert string_literal("two\nlines \\ here") == '"two\\nlines \\\\ here"'
    assert value_literal(1e-7) == "0.0000001"
    assert all_of('{A} = "x"', "{B} > 2") == 'AND({A} = "x", {B} > 2)'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        value_literal(value)


def test_empty_names_and_matches_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        field_ref("")
    with pytest.raises(ValueError, match="at least one"):
        match_formula({})
