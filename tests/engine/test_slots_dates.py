"""Date and time slots, resolved against an injected clock in the workflow's timezone."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxflow.engine.slots import Parsed, SlotContext, format_slot, parse_slot

MADRID = ZoneInfo("Europe/Madrid")
# Thursday 26 November 2026, 15:00 in Madrid.
CONTEXT = SlotContext(now=datetime(2026, 11, 26, 15, 0, tzinfo=MADRID), timezone="Europe/Madrid")
ZONES = ["UTC", "Europe/Madrid", "America/Los_Angeles", "Pacific/Auckland", "Asia/Kolkata"]


def at(hour: int, minute: int = 0, *, region: str = "US") -> SlotContext:
    now = datetime(2026, 11, 26, hour, minute, tzinfo=MADRID)
    return SlotContext(now=now, timezone="Europe/Madrid", region=region)


def parsed(kind: str, text: str, context: SlotContext = CONTEXT) -> object:
    result = parse_slot(kind, text, context)
    return None if result is None else result.value


class TestDate:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("today", "2026-11-26"),
            ("tonight", "2026-11-26"),
            ("Tomorrow.", "2026-11-27"),
            ("um tomorrow please", "2026-11-27"),
            ("day after tomorrow", "2026-11-28"),
            ("the day after tomorrow", "2026-11-28"),
            ("yesterday", "2026-11-25"),
            ("in 3 days", "2026-11-29"),
            ("in three days", "2026-11-29"),
            ("in a week", "2026-12-03"),
            ("in two weeks", "2026-12-10"),
            ("two weeks from now", "2026-12-10"),
            ("march 3", "2027-03-03"),
            ("March 3rd", "2027-03-03"),
            ("march third", "2027-03-03"),
            ("3 march", "2027-03-03"),
            ("3rd march", "2027-03-03"),
            ("the 3rd of march", "2027-03-03"),
            ("the third of march", "2027-03-03"),
            ("march the third", "2027-03-03"),
            ("december 1st", "2026-12-01"),
            ("november 26", "2026-11-26"),
            ("november 25", "2027-11-25"),
            ("march 3 2028", "2028-03-03"),
            ("march 3rd, 2028", "2028-03-03"),
            ("3 march 2028", "2028-03-03"),
            ("march third twenty twenty eight", "2028-03-03"),
            ("march third two thousand twenty eight", "2028-03-03"),
            ("the twenty first of december", "2026-12-21"),
            ("3rd", "2026-12-03"),
            ("the third", "2026-12-03"),
            ("on the 30th", "2026-11-30"),
            ("the 26th", "2026-11-26"),
            ("the 31st", "2026-12-31"),  # November has no 31st
            ("2026-03-03", "2026-03-03"),
            ("3/14", "2027-03-14"),
            ("3/14/2027", "2027-03-14"),
            ("12/25/26", "2026-12-25"),
            ("friday march 5", "2027-03-05"),
            ("tomorrow, friday", "2026-11-27"),
            ("december 25 for 4 people", "2026-12-25"),
            ("may i say december 24", "2026-12-24"),
            ("just a second, friday", "2026-11-27"),
            ("first of all, tomorrow", "2026-11-27"),
        ],
    )
    def test_understands(self, text: str, expected: str) -> None:
        assert parsed("date", text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "banana",
            "march",
            "next week",
            "some day",
            "february 30",
            "february 29",  # neither 2026 nor 2027 has one
            "2026-02-30",
            "13/13",
            "14/3",  # US reading: there is no month 14
            "march 45",
            "the 0th",
            "friday march 6",  # March 6 2027 is a Saturday
            "friday or saturday",
            "tomorrow or the day after tomorrow",
            "in a billion days",
        ],
    )
    def test_refuses(self, text: str) -> None:
        assert parse_slot("date", text, CONTEXT) is None

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            # Today is Thursday 26 November 2026.
            ("friday", "2026-11-27"),
            ("on friday", "2026-11-27"),
            ("this friday", "2026-11-27"),
            ("this coming friday", "2026-11-27"),
            ("next friday", "2026-12-04"),
            ("friday next week", "2026-12-04"),
            ("last friday", "2026-11-20"),
            ("wednesday", "2026-12-02"),
            ("next wednesday", "2026-12-02"),
            # Said on a Thursday: bare "thursday" is a week away, "this thursday" is today.
            ("thursday", "2026-12-03"),
            ("this thursday", "2026-11-26"),
            ("next thursday", "2026-12-03"),
            ("last thursday", "2026-11-19"),
            ("monday", "2026-11-30"),
            ("next monday", "2026-11-30"),
            ("sunday", "2026-11-29"),
            ("next sunday", "2026-12-06"),
        ],
    )
    def test_weekdays(self, text: str, expected: str) -> None:
        assert parsed("date", text) == expected

    def test_next_weekday_on_a_monday_skips_this_week(self) -> None:
        monday = SlotContext(
            now=datetime(2026, 11, 23, 9, 0, tzinfo=MADRID), timezone="Europe/Madrid"
        )
        assert parsed("date", "friday", monday) == "2026-11-27"
        assert parsed("date", "this friday", monday) == "2026-11-27"
        assert parsed("date", "next friday", monday) == "2026-12-04"

    @pytest.mark.parametrize(
        ("region", "expected"), [("US", "2027-03-04"), ("GB", "2027-04-03"), ("ES", "2027-04-03")]
    )
    def test_numeric_dates_read_by_region(self, region: str, expected: str) -> None:
        assert parsed("date", "3/4", at(15, region=region)) == expected

    def test_day_first_regions_read_dotted_dates(self) -> None:
        assert parsed("date", "15.3.2027", at(15, region="ES")) == "2027-03-15"
        assert parsed("date", "15.3.2027", at(15, region="US")) is None

    def test_today_is_the_local_date_not_the_utc_one(self) -> None:
        # 23:30 UTC on the 26th is already the 27th in Madrid and still the 26th in Los Angeles.
        now = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
        madrid = SlotContext(now=now, timezone="Europe/Madrid")
        los_angeles = SlotContext(now=now, timezone="America/Los_Angeles")
        assert parsed("date", "today", SlotContext(now=now)) == "2026-11-26"
        assert parsed("date", "today", madrid) == "2026-11-27"
        assert parsed("date", "tomorrow", madrid) == "2026-11-28"
        assert parsed("date", "today", los_angeles) == "2026-11-26"
        assert parsed("date", "friday", madrid) == "2026-12-04"  # the 27th is already Friday

    @pytest.mark.parametrize(
        ("value", "spoken"),
        [
            ("2026-11-27", "Friday November 27"),
            ("2027-03-06", "Saturday March 6"),
            ("2027-11-26", "Friday November 26 2027"),
            ("2026-11-25", "Wednesday November 25 2026"),
        ],
    )
    def test_format(self, value: str, spoken: str) -> None:
        assert format_slot("date", value, CONTEXT) == spoken

    @settings(max_examples=300, deadline=None)
    @given(st.integers(0, 731))
    def test_round_trips_over_the_next_two_years(self, days: int) -> None:
        value = (date(2026, 11, 26) + timedelta(days=days)).isoformat()
        assert parse_slot("date", format_slot("date", value, CONTEXT), CONTEXT) == Parsed(value)

    @settings(max_examples=300, deadline=None)
    @given(
        st.datetimes(datetime(2000, 1, 1), datetime(2090, 1, 1), timezones=st.just(UTC)),
        st.sampled_from(ZONES),
        st.integers(-400, 731),
    )
    def test_round_trips_from_any_clock(self, now: datetime, zone: str, days: int) -> None:
        context = SlotContext(now=now, timezone=zone)
        value = (context.today + timedelta(days=days)).isoformat()
        assert parse_slot("date", format_slot("date", value, context), context) == Parsed(value)


class TestTime:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("7", "19:00"),
            ("7 pm", "19:00"),
            ("7pm", "19:00"),
            ("7 p.m.", "19:00"),
            ("7 p m", "19:00"),
            ("7 am", "07:00"),
            ("7 A.M.", "07:00"),
            ("7:30", "19:30"),
            ("7.30 pm", "19:30"),
            ("7:30pm", "19:30"),
            ("19:30", "19:30"),
            ("07:30", "07:30"),
            ("1930", "19:30"),
            ("half past seven", "19:30"),
            ("half seven", "19:30"),
            ("quarter past 7", "19:15"),
            ("a quarter past seven in the morning", "07:15"),
            ("quarter to eight", "19:45"),
            ("quarter of eight", "19:45"),
            ("ten to eight pm", "19:50"),
            ("twenty five past six", "18:25"),
            ("5 minutes to 8", "19:55"),
            ("seven thirty", "19:30"),
            ("seven forty five", "19:45"),
            ("seven oh five", "19:05"),
            ("seven o'clock", "19:00"),
            ("seven o clock", "19:00"),
            ("noon", "12:00"),
            ("midday", "12:00"),
            ("12 noon", "12:00"),
            ("midnight", "00:00"),
            ("12 midnight", "00:00"),
            ("quarter to midnight", "23:45"),
            ("quarter past noon", "12:15"),
            ("12 am", "00:00"),
            ("12 pm", "12:00"),
            ("12:15 am", "00:15"),
            ("7 in the evening", "19:00"),
            ("7 this evening", "19:00"),
            ("7 tonight", "19:00"),
            ("7 at night", "19:00"),
            ("12 tonight", "00:00"),
            ("2 at night", "02:00"),
            ("3 in the afternoon", "15:00"),
            ("10 in the morning", "10:00"),
            ("7 tomorrow morning", "07:00"),
            ("nineteen hundred", "19:00"),
            ("um at seven thirty pm please", "19:30"),
            ("0", "00:00"),
            ("17", "17:00"),
        ],
    )
    def test_understands(self, text: str, expected: str) -> None:
        assert parsed("time", text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "banana",
            "tonight",
            "13 am",
            "0 pm",
            "7:75",
            "25:00",
            "7 midnight",
            "at 7 for 4 people",
            "7 or 8",
            "2 to 3",  # a range, not 2:58
            "7 pm or 8 pm",
        ],
    )
    def test_refuses(self, text: str) -> None:
        assert parse_slot("time", text, CONTEXT) is None

    @pytest.mark.parametrize(
        ("hour", "minute", "text", "expected"),
        [
            (15, 0, "7", "19:00"),
            (6, 0, "7", "07:00"),
            (15, 0, "3", "03:00"),  # 15:00 itself is not after now
            (14, 59, "3", "15:00"),
            (19, 10, "7:30", "19:30"),
            (19, 40, "7:30", "07:30"),
            (23, 0, "12", "00:00"),
            (11, 0, "12", "12:00"),
            (15, 0, "quarter to eight", "19:45"),
            (6, 0, "quarter to eight", "07:45"),
            (15, 0, "7 am", "07:00"),
        ],
    )
    def test_bare_hours_are_the_next_such_time(
        self, hour: int, minute: int, text: str, expected: str
    ) -> None:
        assert parsed("time", text, at(hour, minute)) == expected

    def test_bare_hours_resolve_in_the_workflow_timezone(self) -> None:
        # 15:00 in Madrid is 06:00 in Los Angeles: "7" is the next seven o'clock there.
        now = datetime(2026, 11, 26, 15, 0, tzinfo=MADRID)
        assert parsed("time", "7", SlotContext(now=now, timezone="Europe/Madrid")) == "19:00"
        assert parsed("time", "7", SlotContext(now=now, timezone="America/Los_Angeles")) == "07:00"

    @pytest.mark.parametrize(
        ("value", "spoken"),
        [
            ("19:30", "7:30 pm"),
            ("07:00", "7 am"),
            ("07:05", "7:05 am"),
            ("12:00", "noon"),
            ("00:00", "midnight"),
            ("00:45", "12:45 am"),
            ("12:30", "12:30 pm"),
        ],
    )
    def test_format(self, value: str, spoken: str) -> None:
        assert format_slot("time", value, CONTEXT) == spoken

    @pytest.mark.parametrize("value", ["24:00", "7:3x", "noon"])
    def test_format_rejects_non_times(self, value: str) -> None:
        with pytest.raises(ValueError):  # noqa: PT011
            format_slot("time", value, CONTEXT)

    @settings(max_examples=300, deadline=None)
    @given(st.integers(0, 24 * 60 - 1), st.integers(0, 24 * 60 - 1), st.sampled_from(ZONES))
    def test_every_minute_round_trips_at_any_time_of_day(
        self, minute_of_day: int, now_minute: int, zone: str
    ) -> None:
        now = datetime(2026, 11, 26, tzinfo=ZoneInfo(zone)) + timedelta(minutes=now_minute)
        context = SlotContext(now=now, timezone=zone)
        value = f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"
        assert parse_slot("time", format_slot("time", value, context), context) == Parsed(value)
