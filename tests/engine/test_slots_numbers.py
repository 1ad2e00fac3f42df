"""Integer and number slots: digits, number words and fractions, one quantity or refusal."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxflow.engine.slots import Parsed, SlotContext, format_slot, parse_slot

CONTEXT = SlotContext(
    now=datetime(2026, 11, 26, 15, 0, tzinfo=ZoneInfo("Europe/Madrid")), timezone="Europe/Madrid"
)


def parsed(kind: str, text: str) -> int | float | bool | str | None:
    result = parse_slot(kind, text, CONTEXT)
    return None if result is None else result.value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4", 4),
        ("12", 12),
        ("1,200", 1200),
        ("1200", 1200),
        ("four", 4),
        ("Four.", 4),
        ("twenty two", 22),
        ("twenty-two", 22),
        ("one hundred and five", 105),
        ("one hundred five", 105),
        ("a hundred", 100),
        ("two thousand and twenty six", 2026),
        ("one million two hundred thousand three", 1_200_003),
        ("twelve hundred", 1200),
        ("twelve hundred thousand", 1_200_000),
        ("a dozen", 12),
        ("half a dozen", 6),
        ("two dozen", 24),
        ("a couple", 2),
        ("a couple of us", 2),
        ("zero", 0),
        ("none", 0),
        ("nobody", 0),
        ("no one", 0),
        ("there will be four of us", 4),
        ("um we are four people please", 4),
        ("uh about twenty", 20),
        ("four, four people", 4),
        ("the first two", 2),
        ("2 thousand", 2000),
        ("minus four", -4),
        ("-4", -4),
        ("3.0", 3),
    ],
)
def test_integer_understands(text: str, expected: int) -> None:
    result = parsed("integer", text)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    "text",
    [
        "",
        "banana",
        "four or five",
        "4-5",
        "four, no, five",
        "at 7 for 4",
        "3.5",
        "two and a half",
        "a half",
        "7:30",
        "1,2,3",
        "a few",
        "several",
        "the first",
        "no",
    ],
)
def test_integer_refuses(text: str) -> None:
    assert parse_slot("integer", text, CONTEXT) is None


def test_no_comma_one_is_the_answer_one_not_nobody() -> None:
    assert parsed("integer", "no, one") == 1


@pytest.mark.parametrize(
    ("text", "expected"), [("1e-07", 1e-07), ("2.5e+20", 2.5e20), ("1e3", 1000)]
)
def test_python_float_notation_is_read_for_values_the_model_returns(
    text: str, expected: float
) -> None:
    assert parsed("number", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4", 4),
        ("3.5", 3.5),
        ("1,200.75", 1200.75),
        ("three point five", 3.5),
        ("three point one four", 3.14),
        ("point five", 0.5),
        ("two and a half", 2.5),
        ("one and a half", 1.5),
        ("four and a quarter", 4.25),
        ("four and three quarters", 4.75),
        ("a half", 0.5),
        ("half", 0.5),
        ("one half", 0.5),
        ("three quarters", 0.75),
        ("1/2", 0.5),
        ("3/4", 0.75),
        ("4/2", 2),
        ("minus 2.5", -2.5),
        ("-0.25", -0.25),
        ("about 1.5 million", 1_500_000),
        ("it weighs about three point five kilos", 3.5),
    ],
)
def test_number_understands(text: str, expected: float) -> None:
    result = parsed("number", text)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("text", ["", "pi", "3.5 or 4", "1/0", "point", "7:30", "1" * 500])
def test_number_refuses(text: str) -> None:
    assert parse_slot("number", text, CONTEXT) is None


@pytest.mark.parametrize(
    ("kind", "value", "spoken"),
    [
        ("integer", 4, "four"),
        ("integer", 105, "one hundred five"),
        ("integer", -12, "minus twelve"),
        ("integer", 0, "zero"),
        ("integer", 10**15, "1000000000000000"),
        ("number", 2.5, "2.5"),
        ("number", 3.0, "three"),
        ("number", 1e-7, "0.0000001"),
        ("number", -0.5, "minus 0.5"),
    ],
)
def test_format_reads_numbers_back(kind: str, value: float, spoken: str) -> None:
    assert format_slot(kind, value, CONTEXT) == spoken


@pytest.mark.parametrize(
    ("kind", "value"),
    [("integer", 2.5), ("integer", True), ("number", float("nan")), ("number", "4")],
)
def test_format_rejects_values_of_the_wrong_shape(kind: str, value: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        format_slot(kind, value, CONTEXT)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.integers(-10_000, 10_000))
def test_integer_round_trips(value: int) -> None:
    assert parse_slot("integer", format_slot("integer", value, CONTEXT), CONTEXT) == Parsed(value)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 1_000_000))
def test_number_words_round_trip(value: int) -> None:
    spoken = format_slot("integer", value, CONTEXT)
    assert spoken.replace(" ", "").isalpha()
    assert parse_slot("integer", spoken, CONTEXT) == Parsed(value)


@settings(max_examples=200, deadline=None)
@given(st.integers(-(10**30), 10**30))
def test_large_integers_round_trip(value: int) -> None:
    assert parse_slot("integer", format_slot("integer", value, CONTEXT), CONTEXT) == Parsed(value)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**9))
def test_grouped_digits_read_as_one_number(value: int) -> None:
    assert parse_slot("integer", f"{value:,}", CONTEXT) == Parsed(value)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**6), 10**6)))
def test_number_round_trips(value: float) -> None:
    result = parse_slot("number", format_slot("number", value, CONTEXT), CONTEXT)
    assert result == Parsed(value)
    assert result is not None
    assert isinstance(result.value, int) == float(value).is_integer()
