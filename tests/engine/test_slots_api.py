"""`parse_slot` and `format_slot` as the engine uses them: any text, every kind, never a crash."""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxflow.engine.slots import (
    MAX_TEXT_LENGTH,
    SLOT_TYPES,
    Parsed,
    SlotContext,
    format_slot,
    parse_slot,
)

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=ZoneInfo("Europe/Madrid"))
CONTEXT = SlotContext(
    now=NOW,
    timezone="Europe/Madrid",
    choices={"red": ["crimson", "dark red"], "blue": [], "take_away": ["to go"]},
)
KINDS = sorted(SLOT_TYPES)

# Words every parser reacts to, so generated sentences reach the deep paths, not just refusals.
VOCABULARY = [
    "one", "two", "twenty", "hundred", "thousand", "and", "a", "half", "quarter", "point",
    "minus", "-", "0", "7", "12", "31", "2026", "3rd", "first", "/", ":", ".", ",", "@", "+",
    "march", "may", "friday", "next", "this", "last", "the", "of", "at", "dot", "plus",
    "double", "triple", "oh", "pm", "am", "tonight", "to", "past", "noon", "midnight", "no",
    "not", "yes", "is", "it's", "my name is", "in", "days", "week", "1,200", "7:30", "3/14",
    "2026-02-30", "99999999999999999999", "couple", "dozen", "red", "blue", "go", "um",
]  # fmt: skip
sentences = st.lists(st.sampled_from(VOCABULARY), max_size=14)
TEXTS = st.one_of(st.text(), sentences.map(" ".join), sentences.map("".join))


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=150, deadline=None)
@given(text=st.text())
def test_any_text_is_a_json_value_or_none(kind: str, text: str) -> None:
    result = parse_slot(kind, text, CONTEXT)
    if result is not None:
        assert result.value is not None
        json.dumps(result.value, allow_nan=False)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=300, deadline=None)
@given(text=TEXTS)
def test_whatever_is_understood_reads_back_the_same(kind: str, text: str) -> None:
    result = parse_slot(kind, text, CONTEXT)
    if result is not None:
        json.dumps(result.value, allow_nan=False)
        assert parse_slot(kind, format_slot(kind, result.value, CONTEXT), CONTEXT) == result


@pytest.mark.parametrize("kind", ["object", "", "Integer", "text"])
def test_unknown_kinds_are_programming_errors(kind: str) -> None:
    with pytest.raises(ValueError, match="unknown slot type"):
        parse_slot(kind, "4", CONTEXT)
    with pytest.raises(ValueError, match="unknown slot type"):
        format_slot(kind, 4, CONTEXT)


def test_long_answers_are_refused_unread_except_for_strings() -> None:
    text = "four " + "very " * MAX_TEXT_LENGTH
    assert parse_slot("integer", text, CONTEXT) is None
    assert parse_slot("string", text, CONTEXT) == Parsed(text.strip())


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("string", "it's Ana", "Ana"),
        ("integer", "four of us", 4),
        ("number", "two and a half", 2.5),
        ("boolean", "yes please", True),
        ("date", "tomorrow", "2026-11-27"),
        ("time", "half past seven", "19:30"),
        ("email", "ana at example dot com", "ana@example.com"),
        ("phone", "four one five five five five zero one two three", "+14155550123"),
        ("enum", "to go", "take_away"),
    ],
)
def test_every_kind_through_the_public_entry_point(kind: str, text: str, value: object) -> None:
    assert parse_slot(kind, text, CONTEXT) == Parsed(value)  # type: ignore[arg-type]


def test_the_clock_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SlotContext(now=datetime(2026, 11, 26, 15, 0))


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd"])
def test_unknown_timezones_are_refused_up_front(zone: str) -> None:
    with pytest.raises(ValueError, match="unknown timezone"):
        SlotContext(now=NOW, timezone=zone)


def test_region_codes_are_case_insensitive() -> None:
    context = SlotContext(now=NOW, region="gb")
    assert parse_slot("phone", "020 7946 0958", context) == Parsed("+442079460958")
    assert parse_slot("date", "3/4", context) == Parsed("2027-04-03")
