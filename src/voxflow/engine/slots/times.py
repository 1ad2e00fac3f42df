"""The `time` slot: clock times as people say them, resolved in the workflow's timezone."""

from __future__ import annotations

import re

from voxflow.engine.slots.context import Parsed, SlotContext
from voxflow.engine.slots.numwords import Num, with_numbers
from voxflow.engine.slots.text import tokens

_DAY = 24 * 60
_HALF_DAY = 12 * 60

# "p.m.", "p. m", "p m" become "pm" before tokenising, which would otherwise split them.
_DOTTED_MERIDIEM = re.compile(r"\b([ap])\s*\.\s*m\b\.?|\b([ap])\s+m\b")
_CLOCK = re.compile(r"([0-9]{1,2})[:.]([0-9]{2})")

_MERIDIEM_WORDS = {
    "am": "am",
    "morning": "am",
    "pm": "pm",
    "afternoon": "pm",
    "evening": "evening",
    "tonight": "night",
    "night": "night",
}
_MERIDIEM_LEAD_INS = frozenset({"in", "the", "this", "at", "on", "today", "tomorrow"})
_RELATIONS = {"past": 1, "after": 1, "to": -1, "till": -1, "til": -1, "before": -1, "of": -1}
_CLOCK_FACE_MINUTES = frozenset({5, 10, 20, 25})
_MINUTE_WORDS = frozenset({"minute", "minutes", "min", "mins"})
_ZERO_WORDS = frozenset({"oh", "o"})


class _Invalid(Exception):
    """A time that cannot exist ("13 am", "7:75"): refuse the whole answer."""


def parse_time(text: str, context: SlotContext) -> Parsed | None:
    spelled = _DOTTED_MERIDIEM.sub(lambda match: f" {match[1] or match[2]}m ", text.lower())
    now = context.local_now
    reader = _Reader(with_numbers(tokens(spelled)), now.hour * 60 + now.minute)
    try:
        found = reader.read()
    except _Invalid:
        return None
    if len(found) != 1:
        return None
    hour, minute = divmod(found.pop(), 60)
    return Parsed(f"{hour:02d}:{minute:02d}")


def format_time(value: str) -> str:
    hour, minute = (int(part) for part in value.split(":"))
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(f"{value!r} is not a time")
    if minute == 0 and hour in (0, 12):
        return "midnight" if hour == 0 else "noon"
    suffix = "am" if hour < 12 else "pm"
    clock = str(hour % 12 or 12) + (f":{minute:02d}" if minute else "")
    return f"{clock} {suffix}"


class _Reader:
    """Collects every time of day the transcript names, as minutes after midnight."""

    def __init__(self, items: list[str | Num], now_minute: int) -> None:
        self.items = items
        self.now_minute = now_minute
        self.found: set[int] = set()

    def read(self) -> set[int]:
        index = 0
        while index < len(self.items):
            index = self._read_at(index)
        return self.found

    def _read_at(self, index: int) -> int:
        item = self.items[index]
        relative = self._relative(index)
        if relative is not None:
            return relative
        if isinstance(item, Num):
            return self._hour(index, item)
        if item in ("noon", "midday", "midnight"):
            self.found.add(0 if item == "midnight" else _HALF_DAY)
            return index + 1
        clock = _CLOCK.fullmatch(item)
        if clock is None:
            return index + 1
        hour, minute = int(clock[1]), int(clock[2])
        # A leading zero ("07:30") is 24-hour notation, so no am/pm guessing.
        explicit = clock[1].startswith("0") and len(clock[1]) == 2
        meridiem, after = self._meridiem(index + 1)
        self.found.add(self._resolve(hour, minute, meridiem, explicit=explicit))
        return after

    def _hour(self, index: int, number: Num) -> int:
        if number.ordinal:
            return index + 1
        after = index + 1
        hour, minute, explicit = number.value, 0, False
        if len(number.digits) in (3, 4) or (number.spoken and number.value >= 100):
            hour, minute = divmod(number.value, 100)  # "730", "1930", "nineteen hundred"
            explicit = number.digits.startswith("0")
        else:
            minutes = self._spoken_minutes(after)
            if minutes is not None:
                minute, after = minutes
            elif self._word(after) == "oclock":
                after += 1
            elif self._word(after) == "o" and self._word(after + 1) == "clock":
                after += 2
        if hour > 23:
            return index + 1
        meridiem, after = self._meridiem(after)
        self.found.add(self._resolve(hour, minute, meridiem, explicit=explicit))
        return after

    def _spoken_minutes(self, index: int) -> tuple[int, int] | None:
        """ "thirty" in "seven thirty", "oh five" in "seven oh five"."""
        number = self._num(index)
        if number is not None and number.spoken and 10 <= number.value < 60:
            return number.value, index + 1
        zero = self._word(index) in _ZERO_WORDS or (number is not None and number.value == 0)
        unit = self._num(index + 1)
        if zero and unit is not None and unit.spoken and unit.value < 10:
            return unit.value, index + 2
        return None

    def _relative(self, index: int) -> int | None:
        """ "half past seven", "quarter to 8", "ten past six pm", "half seven"."""
        item = self.items[index]
        start = index + 1
        if item == "a" and self._word(start) == "quarter":
            item, start = "quarter", start + 1
        if item in ("half", "quarter"):
            minutes = 30 if item == "half" else 15
        elif isinstance(item, Num) and not item.ordinal and 0 < item.value < 60:
            minutes = item.value
            if self._word(start) in _MINUTE_WORDS:
                start += 1
            elif minutes not in _CLOCK_FACE_MINUTES:
                return None  # "2 to 3" is a range, not 2:58
        else:
            return None
        direction = _RELATIONS.get(self._word(start), 0)
        if direction == 0 and item == "half" and self._num(start) is not None:
            direction, start = 1, start - 1  # British "half seven" is 7:30
        if direction == 0 or (direction < 0 and minutes == 30):
            return None
        target = self._target_hour(start + 1)
        if target is None:
            return None
        hour, meridiem, after = target
        if not meridiem:
            meridiem, after = self._meridiem(after)
        offset = minutes * direction
        if meridiem or hour == 0 or hour > 12:
            base = self._resolve(hour, 0, meridiem, explicit=True)
            self.found.add((base + offset) % _DAY)
        else:
            self.found.add(self._soonest((hour * 60 + offset) % _HALF_DAY))
        return after

    def _target_hour(self, index: int) -> tuple[int, str, int] | None:
        """The hour in "quarter to <hour>"; noon and midnight come with their own meridiem."""
        word = self._word(index)
        if word in ("noon", "midday", "midnight"):
            return 12, ("midnight" if word == "midnight" else "noon"), index + 1
        number = self._num(index)
        if number is None or number.ordinal or number.value > 23:
            return None
        after = index + 1
        if self._word(after) == "oclock":
            after += 1
        return number.value, "", after

    def _meridiem(self, index: int) -> tuple[str, int]:
        word = self._word(index)
        if word in ("noon", "midnight"):
            return word, index + 1
        position = index
        while position < index + 3 and self._word(position) in _MERIDIEM_LEAD_INS:
            position += 1
        meridiem = _MERIDIEM_WORDS.get(self._word(position), "")
        return (meridiem, position + 1) if meridiem else ("", index)

    def _resolve(self, hour: int, minute: int, meridiem: str, *, explicit: bool) -> int:
        if minute > 59 or hour > 23:
            raise _Invalid
        if meridiem in ("noon", "midnight"):
            if hour != 12 or minute:
                raise _Invalid
            return 0 if meridiem == "midnight" else _HALF_DAY
        if meridiem == "am":
            if hour > 12:
                raise _Invalid
            return (hour % 12) * 60 + minute
        if meridiem:
            if hour == 0:
                raise _Invalid
            if hour > 12:
                return hour * 60 + minute
            if meridiem == "pm":
                return (hour % 12 + 12) * 60 + minute
            if hour == 12 or (meridiem == "night" and hour < 5):
                return (hour % 12) * 60 + minute  # "12 tonight" is midnight, "2 at night" 2 am
            return (hour + 12) * 60 + minute
        if explicit or hour == 0 or hour > 12:
            return hour * 60 + minute
        return self._soonest((hour % 12) * 60 + minute)

    def _soonest(self, half_day_minute: int) -> int:
        """The bare-hour rule: of the am and pm readings, the first strictly after now."""
        candidates = (half_day_minute, half_day_minute + _HALF_DAY)
        return min(candidates, key=lambda minute: (minute - self.now_minute - 1) % _DAY)

    def _num(self, index: int) -> Num | None:
        item = self.items[index] if 0 <= index < len(self.items) else None
        return item if isinstance(item, Num) else None

    def _word(self, index: int) -> str:
        item = self.items[index] if 0 <= index < len(self.items) else None
        return item if isinstance(item, str) else ""
