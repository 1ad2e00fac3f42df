"""English number words: reading "one hundred and five" or "twenty first", and writing them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEENS = (
    "ten", "eleven", "twelve", "thirteen", "fourteen",
    "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_ORDINAL_UNITS = (
    "", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth"
)  # fmt: skip
_ORDINAL_TEENS = (
    "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth",
    "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth",
)  # fmt: skip
_ORDINAL_TENS = (
    "twentieth", "thirtieth", "fortieth", "fiftieth",
    "sixtieth", "seventieth", "eightieth", "ninetieth",
)  # fmt: skip

UNIT_VALUES = {word: value for value, word in enumerate(_UNITS)}
SMALL_VALUES = UNIT_VALUES | {word: value for value, word in enumerate(_TEENS, 10)}
TENS_VALUES = {word: value for value, word in zip(range(20, 100, 10), _TENS, strict=True)}
_ORDINALS = (
    {word: value for value, word in enumerate(_ORDINAL_UNITS) if word}
    | {word: value for value, word in enumerate(_ORDINAL_TEENS, 10)}
    | {word: value for value, word in zip(range(20, 100, 10), _ORDINAL_TENS, strict=True)}
)
SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
WORDS_LIMIT = 10**15
"""`to_words` spells magnitudes below this; larger ones are clearer as digits."""

NUMBER_WORDS = frozenset(
    SMALL_VALUES.keys()
    | TENS_VALUES.keys()
    | _ORDINALS.keys()
    | SCALES.keys()
    | {"hundred", "dozen"}
)

_STARTS = NUMBER_WORDS | {"a", "half", "couple"}
_PLAIN_DIGITS = re.compile(r"([0-9]{1,400})(st|nd|rd|th)?")


@dataclass(frozen=True, slots=True)
class Num:
    """A whole number read from the transcript, spoken or written in digits."""

    value: int
    ordinal: bool = False
    spoken: bool = True
    digits: str = ""
    """The digits as written ("07"), empty when the number was spoken."""


@dataclass(frozen=True, slots=True)
class _Read:
    value: int
    ordinal: bool
    end: int


def read_number(items: Sequence[object], start: int) -> _Read | None:
    """Read the longest well-formed number phrase starting at `items[start]`.

    Phrases that do not compose ("seven thirty", "one two") stop early, so callers see them as
    separate numbers. Besides the plain grammar: "a hundred", "a dozen", "half a dozen",
    "a couple" (2) and "<n> dozen".
    """
    idiom = _read_idiom(items, start)
    if idiom is not None:
        return idiom
    total = 0
    last_scale = WORDS_LIMIT
    group = _read_below_thousand(items, start)
    if group is None and _at(items, start) == "a" and _at(items, start + 1) in SCALES:
        group = _Read(1, False, start + 1)
    if group is None:
        return None
    if not group.ordinal and 0 < group.value < 100 and _at(items, group.end) == "dozen":
        return _Read(group.value * 12, False, group.end + 1)
    while True:
        scale = SCALES.get(_str(_at(items, group.end)), 0)
        # Only the leading group may count hundreds past nine: "twelve hundred thousand".
        group_limit = 10_000 if total == 0 else 1000
        if group.ordinal or not scale or scale >= last_scale or not 0 < group.value < group_limit:
            return _Read(total + group.value, group.ordinal, group.end)
        total += group.value * scale
        last_scale = scale
        after = group.end + 1
        follow = after + 1 if _at(items, after) == "and" else after
        following = _read_below_thousand(items, follow)
        if following is None or not 0 < following.value < last_scale:
            return _Read(total, False, after)
        group = following


def to_words(number: int) -> str:
    """Spell a whole number the way `read_number` reads it back ("minus one hundred five")."""
    if number < 0:
        return "minus " + to_words(-number)
    if number >= WORDS_LIMIT:
        raise ValueError(f"{number} is too large to spell")
    if number == 0:
        return "zero"
    parts: list[str] = []
    for word, scale in sorted(SCALES.items(), key=lambda item: -item[1]):
        if number >= scale:
            parts += [_below_thousand_words(number // scale), word]
            number %= scale
    if number:
        parts.append(_below_thousand_words(number))
    return " ".join(parts)


def with_numbers(tokens: Sequence[str]) -> list[str | Num]:
    """Replace number phrases and plain digit tokens ("12", "3rd") by `Num` items."""
    items: list[str | Num] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        digits = _PLAIN_DIGITS.fullmatch(token)
        if digits is not None:
            value = int(digits.group(1))
            items.append(Num(value, digits.group(2) is not None, False, digits.group(1)))
            index += 1
            continue
        read = read_number(tokens, index) if token in _STARTS else None
        if read is None:
            items.append(token)
            index += 1
        else:
            items.append(Num(read.value, read.ordinal))
            index = read.end
    return items


def _read_idiom(items: Sequence[object], start: int) -> _Read | None:
    first, second = _at(items, start), _at(items, start + 1)
    if first == "half" and second == "a" and _at(items, start + 2) == "dozen":
        return _Read(6, False, start + 3)
    if first == "a" and second in ("dozen", "couple"):
        return _Read(12 if second == "dozen" else 2, False, start + 2)
    if first in ("dozen", "couple"):
        return _Read(12 if first == "dozen" else 2, False, start + 1)
    return None


def _read_below_hundred(items: Sequence[object], start: int) -> _Read | None:
    word = _str(_at(items, start))
    if word in TENS_VALUES:
        tens = TENS_VALUES[word]
        unit = _str(_at(items, start + 1))
        if UNIT_VALUES.get(unit, 0) > 0:
            return _Read(tens + UNIT_VALUES[unit], False, start + 2)
        if unit in _ORDINALS and _ORDINALS[unit] < 10:
            return _Read(tens + _ORDINALS[unit], True, start + 2)
        return _Read(tens, False, start + 1)
    if word in SMALL_VALUES:
        return _Read(SMALL_VALUES[word], False, start + 1)
    if word in _ORDINALS:
        return _Read(_ORDINALS[word], True, start + 1)
    return None


def _read_below_thousand(items: Sequence[object], start: int) -> _Read | None:
    if _at(items, start) == "a" and _at(items, start + 1) == "hundred":
        hundreds = _Read(100, False, start + 2)
    else:
        head = _read_below_hundred(items, start)
        if head is None or head.ordinal or _at(items, head.end) != "hundred":
            return head
        if not 0 < head.value < 100:
            return _Read(head.value, False, head.end)
        hundreds = _Read(head.value * 100, False, head.end + 1)
    follow = hundreds.end + 1 if _at(items, hundreds.end) == "and" else hundreds.end
    tail = _read_below_hundred(items, follow)
    if tail is None or tail.value == 0:
        return hundreds
    return _Read(hundreds.value + tail.value, tail.ordinal, tail.end)


def _below_thousand_words(number: int) -> str:
    hundreds, rest = divmod(number, 100)
    parts = [_UNITS[hundreds], "hundred"] if hundreds else []
    if rest >= 20:
        parts.append(_TENS[rest // 10 - 2])
        if rest % 10:
            parts.append(_UNITS[rest % 10])
    elif rest >= 10:
        parts.append(_TEENS[rest - 10])
    elif rest:
        parts.append(_UNITS[rest])
    return " ".join(parts)


def _at(items: Sequence[object], index: int) -> object:
    return items[index] if index < len(items) else None


def _str(item: object) -> str:
    return item if isinstance(item, str) else ""
