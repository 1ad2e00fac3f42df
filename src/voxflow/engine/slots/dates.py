"""The `date` slot: relative days, weekdays, month names and written dates, in the caller's zone."""

from __future__ import annotations

import re
from datetime import date, timedelta

from voxflow.engine.slots.context import Parsed, SlotContext
from voxflow.engine.slots.numwords import Num, with_numbers
from voxflow.engine.slots.text import BOUNDARY, tokens

_MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_MONTH_NUMBERS = {name: number for number, name in enumerate(_MONTHS, 1)} | {
    name[:3]: number for number, name in enumerate(_MONTHS, 1) if name != "may"
}
_MONTH_NUMBERS["sept"] = 9
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_NUMBERS = {name: number for number, name in enumerate(_WEEKDAYS)}
_RELATIVE_DAYS = {"today": 0, "tonight": 0, "tomorrow": 1, "yesterday": -1}
_UNIT_DAYS = {"day": 1, "days": 1, "week": 7, "weeks": 7}
_MAX_DAYS_AHEAD = 36_600
_MONTH_DAYS_US = frozenset({"US", "PR", "GU", "VI", "AS", "MP", "UM"})

_ISO = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
_NUMERIC = re.compile(r"([0-9]{1,2})([/.-])([0-9]{1,2})(?:\2([0-9]{4}|[0-9]{2}))?")


class _Invalid(Exception):
    """The caller named a date that does not exist ("february 30"): refuse the whole answer."""


def parse_date(text: str, context: SlotContext) -> Parsed | None:
    today = context.today
    items = with_numbers(tokens(text))
    try:
        dates, weekdays = _Reader(items, today, context.region).read()
    except _Invalid:
        return None
    if not dates:
        dates = {_weekday_date(today, weekday, modifier) for weekday, modifier in weekdays}
    if len(dates) != 1:
        return None
    (found,) = dates
    if any(found.weekday() != weekday for weekday, _ in weekdays):
        return None
    return Parsed(found.isoformat())


def format_date(value: str, context: SlotContext) -> str:
    day = date.fromisoformat(value)
    spoken = f"{_WEEKDAYS[day.weekday()]} {_MONTHS[day.month - 1]} {day.day}".title()
    if _next_month_day(context.today, day.month, day.day) != day:
        spoken += f" {day.year}"
    return spoken


class _Reader:
    """One pass over the items, collecting every date the caller named and every weekday."""

    def __init__(self, items: list[str | Num], today: date, region: str) -> None:
        self.items = items
        self.today = today
        self.month_first = region.upper() in _MONTH_DAYS_US
        self.dates: set[date] = set()
        self.weekdays: list[tuple[int, str]] = []
        self.used: set[int] = set()

    def read(self) -> tuple[set[date], list[tuple[int, str]]]:
        next_week = any(
            self._word(index) == "next" and self._word(index + 1) == "week"
            for index in range(len(self.items))
        )
        for index, item in enumerate(self.items):
            if isinstance(item, Num):
                continue
            if item in _MONTH_NUMBERS:
                self._month(index, _MONTH_NUMBERS[item])
            elif item in _WEEKDAY_NUMBERS:
                modifier = "next" if next_week else self._weekday_modifier(index)
                self.weekdays.append((_WEEKDAY_NUMBERS[item], modifier))
            elif item in _RELATIVE_DAYS:
                self._relative(index, _RELATIVE_DAYS[item])
            elif item in _UNIT_DAYS:
                self._offset(index, _UNIT_DAYS[item])
            else:
                self._written(item)
        for index, item in enumerate(self.items):
            if isinstance(item, Num) and index not in self.used:
                self._day_of_month(index, item)
        return self.dates, self.weekdays

    def _month(self, index: int, month: int) -> None:
        """ "march 3", "march the 3rd", "3 march", "the 3rd of march"; then maybe a year."""
        before = self._day_at(index - 1)
        if before is None and self._word(index - 1) == "of":
            before = self._day_at(index - 2)
        after = self._day_at(index + 1)
        if after is None and self._word(index + 1) == "the":
            after = self._day_at(index + 2)
        # In "3 march 2027" the number after the month is the year, so the day comes before.
        found = after if after is not None and (before is None or after[1] <= 31) else before
        if found is None:
            return
        day_index, day = found
        if day > 31:
            raise _Invalid
        self.used.add(day_index)
        year = self._year_after(max(index, day_index) + 1)
        self.dates.add(self._resolve(year, month, day))

    def _year_after(self, index: int) -> int | None:
        if self._word(index) == BOUNDARY:
            index += 1
        first = self._num(index)
        if first is None or first.ordinal:
            return None
        if first.value >= 1000 and (first.spoken or len(first.digits) == 4):
            self.used.add(index)
            return first.value
        second = self._num(index + 1)
        spoken_pair = first.spoken and second is not None and second.spoken
        if spoken_pair and first.value in (19, 20) and second is not None and second.value < 100:
            self.used.update((index, index + 1))
            return first.value * 100 + second.value
        return None

    def _weekday_modifier(self, index: int) -> str:
        previous = self._word(index - 1)
        if previous == "coming":
            return "this"
        return previous if previous in ("this", "next", "last") else ""

    def _relative(self, index: int, days: int) -> None:
        if days == 1 and self._word(index - 1) == "after" and self._word(index - 2) == "day":
            days = 2
        self.dates.add(self.today + timedelta(days=days))

    def _offset(self, index: int, unit: int) -> None:
        """ "in 3 days", "in a week", "two weeks from now"."""
        count_item = self.items[index - 1] if index > 0 else None
        if isinstance(count_item, Num) and not count_item.ordinal:
            count = count_item.value
        elif count_item in ("a", "an"):
            count = 1
        else:
            return
        introduced = self._word(index - 2) == "in"
        from_now = self._word(index + 1) == "from" and self._word(index + 2) in ("now", "today")
        if introduced or from_now:
            if count * unit > _MAX_DAYS_AHEAD:
                raise _Invalid
            self.used.add(index - 1)
            self.dates.add(self.today + timedelta(days=count * unit))

    def _written(self, token: str) -> None:
        iso = _ISO.fullmatch(token)
        if iso is not None:
            self.dates.add(_checked(*(int(part) for part in iso.groups())))
            return
        numeric = _NUMERIC.fullmatch(token)
        if numeric is None or (numeric.group(2) != "/" and numeric.group(4) is None):
            return
        first, second = int(numeric.group(1)), int(numeric.group(3))
        month, day = (first, second) if self.month_first else (second, first)
        year = numeric.group(4)
        full_year = None if year is None else int(year) + (2000 if len(year) == 2 else 0)
        self.dates.add(self._resolve(full_year, month, day))

    def _day_of_month(self, index: int, number: Num) -> None:
        """ "the 3rd", "on the third", "the 14": a day of this month, or of the next one."""
        if not (number.ordinal or self._word(index - 1) == "the") or number.value > 31:
            return
        if self._word(index - 1) == "a" or self._word(index + 1) == "of":
            return  # "just a second", "first of all"; "the 3rd of march" was read with its month
        if number.value == 0:
            raise _Invalid
        for months_ahead in range(3):
            year, month = divmod(self.today.month - 1 + months_ahead, 12)
            found = _valid(self.today.year + year, month + 1, number.value)
            if found is not None and found >= self.today:
                self.dates.add(found)
                return

    def _resolve(self, year: int | None, month: int, day: int) -> date:
        if year is not None:
            return _checked(year, month, day)
        found = _next_month_day(self.today, month, day)
        if found is None:
            raise _Invalid
        return found

    def _day_at(self, index: int) -> tuple[int, int] | None:
        number = self._num(index)
        if number is None or index in self.used:
            return None
        return index, number.value

    def _num(self, index: int) -> Num | None:
        item = self.items[index] if 0 <= index < len(self.items) else None
        return item if isinstance(item, Num) else None

    def _word(self, index: int) -> str:
        item = self.items[index] if 0 <= index < len(self.items) else None
        return item if isinstance(item, str) else ""


def _weekday_date(today: date, weekday: int, modifier: str) -> date:
    ahead = (weekday - today.weekday()) % 7
    if modifier == "this":
        return today + timedelta(days=ahead)
    if modifier == "next":
        next_monday = today + timedelta(days=7 - today.weekday())
        return next_monday + timedelta(days=weekday)
    if modifier == "last":
        return today - timedelta(days=(today.weekday() - weekday) % 7 or 7)
    return today + timedelta(days=ahead or 7)


def _next_month_day(today: date, month: int, day: int) -> date | None:
    """The first `month`/`day` on or after today, looking at this year and the next."""
    for year in (today.year, today.year + 1):
        found = _valid(year, month, day)
        if found is not None and found >= today:
            return found
    return None


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _checked(year: int, month: int, day: int) -> date:
    found = _valid(year, month, day)
    if found is None:
        raise _Invalid
    return found
