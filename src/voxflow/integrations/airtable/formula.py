"""Airtable formulas built from values a caller said, escaped so a value can never become code.

A `filterByFormula` holds field references (`{Email}`) and literals (`"ana@example.com"`).
Caller input goes only into literals, through `value_literal`, and field names only into
references, through `field_ref`; nothing here splices raw text into a formula.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal

MatchValue = str | int | float | bool | None


def field_ref(name: str) -> str:
    """`{name}`, with the two characters that could end the reference early escaped."""
    if not name:
        raise ValueError("a field name cannot be empty")
    return "{" + name.replace("\\", "\\\\").replace("}", "\\}") + "}"


def string_literal(value: str) -> str:
    """A double-quoted string literal that Airtable reads back as exactly `value`."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def value_literal(value: MatchValue) -> str:
    """`value` as a formula expression: a string, number, TRUE()/FALSE() or BLANK()."""
    if value is None:
        return "BLANK()"
    # bool before int: True is an int to Python, but a checkbox to Airtable.
    if isinstance(value, bool):
        return "TRUE()" if value else "FALSE()"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} cannot be written in a formula")
        # Plain decimal notation: Python's repr switches to exponents ("1e-07"), which
        # Airtable's formula language does not document.
        return format(Decimal(repr(value)), "f")
    return string_literal(value)


def all_of(*conditions: str) -> str:
    """The conjunction of formula conditions; a single condition stays as it is."""
    if not conditions:
        raise ValueError("all_of needs at least one condition")
    if len(conditions) == 1:
        return conditions[0]
    return f"AND({', '.join(conditions)})"


def match_conditions(match: Mapping[str, MatchValue]) -> list[str]:
    """One `{Field} = value` condition per entry, to combine with `all_of`."""
    return [f"{field_ref(field)} = {value_literal(value)}" for field, value in match.items()]


def match_formula(match: Mapping[str, MatchValue]) -> str:
    """Records whose fields equal the given values: `AND({A} = "x", {B} = 3)`."""
    if not match:
        raise ValueError("a match needs at least one field")
    return all_of(*match_conditions(match))
