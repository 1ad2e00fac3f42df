"""The `integer` and `number` slots: one quantity, in digits or in words, anywhere in a sentence."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

from voxflow.engine.slots.context import Parsed
from voxflow.engine.slots.numwords import (
    SCALES,
    WORDS_LIMIT,
    Num,
    to_words,
    with_numbers,
)
from voxflow.engine.slots.text import tokens

# Written quantities: "1,200", "12", "3.5", "-4", "1,200.75", "1e-07" (how the model writes
# floats, re-parsed like the caller's words); and fractions "1/2".
_DECIMAL = re.compile(r"(-?)([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.([0-9]+))?(e[+-]?[0-9]+)?")
_FRACTION = re.compile(r"(-?)([0-9]+)/([0-9]+)")
# Long enough for every finite float written out positionally, short enough to stay cheap.
_MAX_DIGITS = 400

_ZERO_WORDS = frozenset({"none", "nobody", "nil", "nought", "naught"})
_MULTIPLIERS = {**SCALES, "hundred": 100, "dozen": 12}
_FRACTION_WORDS = {"half": Fraction(1, 2), "quarter": Fraction(1, 4)}
_QUARTERS = frozenset({"quarter", "quarters"})


class _Unreadable(Exception):
    """A number-like token we cannot interpret ("7:30", "4-5"): refuse instead of guessing."""


def parse_integer(text: str) -> Parsed | None:
    quantity = _single_quantity(text)
    if quantity is None or quantity.denominator != 1:
        return None
    return Parsed(int(quantity))


def parse_number(text: str) -> Parsed | None:
    quantity = _single_quantity(text)
    if quantity is None:
        return None
    if quantity.denominator == 1:
        return Parsed(int(quantity))
    try:
        value = float(quantity)
    except OverflowError:
        return None
    return Parsed(value) if math.isfinite(value) else None


def format_integer(value: int) -> str:
    if abs(value) < WORDS_LIMIT:
        return to_words(value)
    return f"minus {-value}" if value < 0 else str(value)


def format_number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    if value.is_integer():
        return format_integer(int(value))
    # The shortest repr that round-trips, written without an exponent ("0.0000001").
    written = format(abs(Decimal(repr(value))), "f")
    return f"minus {written}" if value < 0 else written


def _single_quantity(text: str) -> Fraction | None:
    """The one quantity the text mentions, however often; None for none or several."""
    try:
        found = set(_quantities(with_numbers(tokens(text))))
    except _Unreadable:
        return None
    return found.pop() if len(found) == 1 else None


def _quantities(items: list[str | Num]) -> list[Fraction]:
    found: list[Fraction] = []
    index = 0
    while index < len(items):
        sign = 1
        if items[index] == "minus" and index + 1 < len(items):
            sign, index = -1, index + 1
        read = _read_quantity(items, index)
        if read is None:
            index += 1
            continue
        quantity, index = read
        found.append(sign * quantity)
    return found


def _read_quantity(items: list[str | Num], index: int) -> tuple[Fraction, int] | None:
    item = items[index]
    following = items[index + 1] if index + 1 < len(items) else None
    if isinstance(item, Num):
        if item.ordinal:
            return None
        return _extend(items, Fraction(item.value), index + 1, spoken=item.spoken)
    if item in _ZERO_WORDS or (item == "no" and following == Num(1)):
        return Fraction(0), index + (2 if item == "no" else 1)
    if item == "point":
        decimals = _read_decimals(items, Fraction(0), index)
        return decimals if decimals[1] > index else None
    if item in _FRACTION_WORDS:
        return _FRACTION_WORDS[item], index + 1
    if item == "a" and isinstance(following, str) and following in _FRACTION_WORDS:
        return _FRACTION_WORDS[following], index + 2
    if any(character.isdigit() for character in item):
        return _extend(items, _written(item), index + 1, spoken=False)
    return None


def _written(token: str) -> Fraction:
    if len(token) > _MAX_DIGITS:
        raise _Unreadable(token)
    decimal = _DECIMAL.fullmatch(token)
    if decimal is not None:
        sign, whole, fraction, exponent = decimal.groups()
        quantity = Fraction(f"{whole.replace(',', '')}.{fraction or '0'}{exponent or ''}")
        return -quantity if sign else quantity
    ratio = _FRACTION.fullmatch(token)
    if ratio is not None and int(ratio.group(3)) != 0:
        quantity = Fraction(int(ratio.group(2)), int(ratio.group(3)))
        return -quantity if ratio.group(1) else quantity
    raise _Unreadable(token)


def _extend(
    items: list[str | Num], quantity: Fraction, index: int, *, spoken: bool
) -> tuple[Fraction, int]:
    """Continue a quantity: "2 thousand", "three point five", "two and a half", "one half"."""
    word = items[index] if index < len(items) else None
    if not isinstance(word, str):
        return quantity, index
    if not spoken and word in _MULTIPLIERS:
        return quantity * _MULTIPLIERS[word], index + 1
    if word == "point" and quantity.denominator == 1 and quantity >= 0:
        return _read_decimals(items, quantity, index)
    if word == "half" and quantity == 1:
        return Fraction(1, 2), index + 1
    if word in _QUARTERS and quantity in (1, 2, 3):
        return quantity / 4, index + 1
    if word == "and" and quantity.denominator == 1:
        tail = items[index + 1 : index + 3]
        fraction = tail[1] if len(tail) == 2 and tail[0] in ("a", Num(1)) else None
        if isinstance(fraction, str) and fraction in _FRACTION_WORDS:
            return quantity + _FRACTION_WORDS[fraction], index + 3
        if tail[0:1] == [Num(3)] and tail[1:2] in (["quarter"], ["quarters"]):
            return quantity + Fraction(3, 4), index + 3
    return quantity, index


def _read_decimals(items: list[str | Num], whole: Fraction, index: int) -> tuple[Fraction, int]:
    """After "point": single digit words ("one four"), or one number ("fourteen", "14")."""
    digits = ""
    position = index + 1
    while position < len(items):
        item = items[position]
        if isinstance(item, str) and item in ("oh", "o"):
            digits += "0"
        elif isinstance(item, Num) and not item.ordinal and item.spoken and item.value < 10:
            digits += str(item.value)
        elif isinstance(item, Num) and not item.ordinal and not digits:
            digits = item.digits or str(item.value)
            position += 1
            break
        else:
            break
        position += 1
    if not digits or len(digits) > _MAX_DIGITS:
        return whole, index
    return whole + Fraction(f"0.{digits}"), position
