"""Deterministic typed slot parsers: what the caller said, as a typed value, before any LLM.

`parse_slot(kind, text, context)` turns one transcript (lower case, number words, fillers and no
punctuation are normal) into `Parsed(value)` or `None` when it cannot tell, so the engine
re-asks. It never raises for any text; only an unknown `kind` raises `ValueError`.
`format_slot` is how the agent reads a value back, and for every value `parse_slot` produces,
`parse_slot(kind, format_slot(kind, value, c), c) == Parsed(value)`.

Pure: standard library, `phonenumbers`, `email-validator` and `rapidfuzz`; the clock arrives in
`SlotContext.now`. Values are JSON-ready: `date` is "YYYY-MM-DD", `time` is 24-hour "HH:MM",
`phone` is E.164, `enum` is the choice key; `number` is an int when whole, else a float.

Rules for the ambiguous cases:

- Quantities (`integer`, `number`): the answer must mention exactly one distinct quantity
  ("four, four people" is 4; "four or five" and "at 7 for 4" are None). "a couple" is 2,
  "a dozen" 12, "half a dozen" 6, "none"/"nobody"/"no one"/"zero" 0. Ordinals ("the first
  two") are not quantities. Negative only with "minus" or a leading "-". Number words are
  spelled up to the trillions; `integer` refuses fractions ("two and a half"). Python's
  float notation ("1e-07") is read too, for values the model hands back to be re-parsed.
- `boolean`: every yes/no phrase must agree, else None; so "no that's right" and "yeah no"
  are None and the engine asks again rather than guess. "not" (or "isn't") flips a phrase
  starting within two words, in the same clause ("not correct" and "not quite right" are no,
  "not wrong" is yes); a "not" that flips nothing is a no ("I'm not"). Any doubt ("maybe",
  "not sure", "I don't know") is None. Set phrases win over their words: "no problem" is
  yes, "absolutely not" is no.
- `date`, in `context.timezone` (the local date may differ from the UTC one):
  "friday" or "on friday" is the first Friday strictly after today (said on a Friday, it means
  a week later); "this friday" is the first on or after today (today, on a Friday);
  "next friday" and "friday next week" are the Friday of next week (weeks start on Monday);
  "last friday" the latest one before today. A month and day without a year ("march 3",
  "3rd of march", "3/14") is the next occurrence on or after today; "the 3rd" alone is the
  next 3rd on or after today (skipping months too short for it). Numeric dates read month
  first only in the US and its territories, day first elsewhere. A weekday said next to a
  full date must match it ("friday march 5"), and a date that does not exist ("february 30")
  makes the whole answer None. Stray numbers ("for 4 people") are ignored.
- `time`: an hour from 1 to 12 without am/pm or a part of the day is the next such clock time
  strictly after the current minute, in `context.timezone` (at 15:00 "7" is 19:00, at 06:00 it
  is 07:00). 24-hour forms ("19:30", "07:30" with its leading zero) are taken as said.
  "tonight"/"at night" put 12 at midnight and 1-4 after midnight; "in the evening" and
  "pm" put 1-11 after noon. Two different times give None, and a bare number counts as a
  time, so "7 for 4 people" is None too. "quarter to eight" follows the bare-hour rule.
- `email`: spoken words become symbols ("at", "dot", "underscore", "dash"/"hyphen", "plus"),
  digit words become digits, and everything between is joined without spaces, so spelled
  letters work; a lead-in ending in "is"/"at"/"it's" is cut, and two addresses are None.
  Validated for syntax only; the domain is lower-cased, the local part keeps its case.
- `phone`: spoken digits are read one word at a time ("oh" is 0, "double five" 55, "triple 0"
  000, "eight hundred" 800), parsed for `context.region` and kept only if valid.
- `enum`: whole-word mentions of a key (underscores read as spaces) or a synonym first; a
  mention inside a longer mention of another value does not count; mentions of two values are
  None. Otherwise the best rapidfuzz `ratio` of at least 85 against phrase-sized windows of
  the answer, with ties between values None. No choices at all is None.
- `string`: trimmed of surrounding whitespace and punctuation, then of leading filler sounds
  and lead-ins ("my name is", "it's", "i'm", "call me", ...) while something follows them.

Non-string answers longer than `MAX_TEXT_LENGTH` characters are refused unread.
"""

from __future__ import annotations

from typing import get_args

from voxflow.engine.slots.choices import (
    FUZZY_THRESHOLD,
    format_boolean,
    format_enum,
    format_string,
    parse_boolean,
    parse_enum,
    parse_string,
)
from voxflow.engine.slots.contact import format_email, format_phone, parse_email, parse_phone
from voxflow.engine.slots.context import Parsed, SlotContext, SlotType, SlotValue
from voxflow.engine.slots.dates import format_date, parse_date
from voxflow.engine.slots.numeric import format_integer, format_number, parse_integer, parse_number
from voxflow.engine.slots.times import format_time, parse_time

MAX_TEXT_LENGTH = 1000
"""Longer answers are not one typed value; refusing them keeps every parse cheap."""

SLOT_TYPES: frozenset[str] = frozenset(get_args(SlotType))


def parse_slot(kind: str, text: str, context: SlotContext) -> Parsed | None:
    """Understand `text` as a value of type `kind`, or return None to have the caller re-asked."""
    if kind not in SLOT_TYPES:
        raise ValueError(f"unknown slot type {kind!r}")
    if kind == "string":
        return parse_string(text)
    if len(text) > MAX_TEXT_LENGTH:
        return None
    match kind:
        case "integer":
            return parse_integer(text)
        case "number":
            return parse_number(text)
        case "boolean":
            return parse_boolean(text)
        case "date":
            return parse_date(text, context)
        case "time":
            return parse_time(text, context)
        case "email":
            return parse_email(text)
        case "phone":
            return parse_phone(text, context)
        case _:
            return parse_enum(text, context.choices)


def format_slot(kind: str, value: SlotValue, context: SlotContext) -> str:
    """How the agent says `value` back to the caller; `parse_slot` reads it as the same value.

    Raises `ValueError` for an unknown `kind` or a value of the wrong shape for it.
    """
    if kind not in SLOT_TYPES:
        raise ValueError(f"unknown slot type {kind!r}")
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"a boolean slot holds true or false, not {value!r}")
        return format_boolean(value)
    if kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"an {kind} slot holds a number, not {value!r}")
        if kind == "integer" and not isinstance(value, int):
            raise ValueError(f"an integer slot holds a whole number, not {value!r}")
        return format_integer(value) if isinstance(value, int) else format_number(value)
    if not isinstance(value, str):
        raise ValueError(f"a {kind} slot holds a string, not {value!r}")
    match kind:
        case "date":
            return format_date(value, context)
        case "time":
            return format_time(value)
        case "email":
            return format_email(value)
        case "phone":
            return format_phone(value, context)
        case "enum":
            return format_enum(value, context.choices)
        case _:
            return format_string(value)


__all__ = [
    "FUZZY_THRESHOLD",
    "MAX_TEXT_LENGTH",
    "SLOT_TYPES",
    "Parsed",
    "SlotContext",
    "SlotType",
    "SlotValue",
    "format_slot",
    "parse_slot",
]
