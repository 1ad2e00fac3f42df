"""What every slot parser receives, what it returns, and the shared clock arithmetic."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SlotType = Literal[
    "string", "integer", "number", "boolean", "date", "time", "email", "phone", "enum"
]
SlotValue = int | float | bool | str


@dataclass(frozen=True)
class SlotContext:
    """Everything outside the caller's words that a parser may depend on.

    `now` comes from the engine's injected clock and must be timezone-aware; relative dates and
    bare hours resolve against `now` seen in `timezone`. A naive `now` or an unknown `timezone`
    is a programming error and raises `ValueError` here, not later in the middle of a call.
    """

    now: datetime
    timezone: str = "UTC"
    region: str = "US"
    choices: Mapping[str, Sequence[str]] | None = None

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError("SlotContext.now must be timezone-aware")
        zone_info(self.timezone)

    @property
    def local_now(self) -> datetime:
        """`now` as a wall-clock time in the workflow's timezone."""
        return self.now.astimezone(zone_info(self.timezone))

    @property
    def today(self) -> date:
        """The workflow's local calendar date (may differ from the UTC date)."""
        return self.local_now.date()


@dataclass(frozen=True)
class Parsed:
    """A successfully understood answer; `value` is always JSON-serialisable."""

    value: SlotValue


@lru_cache(maxsize=64)
def zone_info(name: str) -> ZoneInfo:
    """The `ZoneInfo` for an IANA name, raising `ValueError` for names that do not exist."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as error:
        raise ValueError(f"unknown timezone {name!r}") from error
