"""Email and phone slots: typed or spelled out, normalised, validated."""

from datetime import datetime
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from voxflow.engine.slots import Parsed, SlotContext, format_slot, parse_slot

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=ZoneInfo("Europe/Madrid"))
CONTEXT = SlotContext(now=NOW, timezone="Europe/Madrid")
UK = SlotContext(now=NOW, timezone="Europe/London", region="GB")


def parsed(kind: str, text: str, context: SlotContext = CONTEXT) -> object:
    result = parse_slot(kind, text, context)
    return None if result is None else result.value


class TestEmail:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("ana@example.com", "ana@example.com"),
            ("Ana@Example.COM.", "Ana@example.com"),
            ("<ana@example.com>", "ana@example.com"),
            ("ana at example dot com", "ana@example.com"),
            ("ana at example.com", "ana@example.com"),
            ("ana dot lopez at mail dot example dot org", "ana.lopez@mail.example.org"),
            ("a n a at example dot com", "ana@example.com"),
            ("j o h n underscore smith at example dot com", "john_smith@example.com"),
            ("mary dash ann at my hyphen site dot co dot uk", "mary-ann@my-site.co.uk"),
            ("ana plus news at example dot com", "ana+news@example.com"),
            ("ana one two three at example dot com", "ana123@example.com"),
            ("my email is ana at example dot com", "ana@example.com"),
            ("it's ana at example dot com please", "ana@example.com"),
            ("um sure it is ana at example dot com thanks", "ana@example.com"),
            ("you can reach me at ana at example dot com", "ana@example.com"),
            ("me at example dot com", "me@example.com"),
            ("ana at gmail dotcom", "ana@gmail.com"),
        ],
    )
    def test_understands(self, text: str, expected: str) -> None:
        assert parsed("email", text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "banana",
            "ana at example",
            "ana at",
            "at example dot com",
            "ana dot at example dot com",
            "ana at example dot com or bob at example dot org",
            "ana@@example.com",
        ],
    )
    def test_refuses(self, text: str) -> None:
        assert parse_slot("email", text, CONTEXT) is None

    def test_format_spells_the_address(self) -> None:
        spoken = format_slot("email", "ana.lopez@mail.example.org", CONTEXT)
        assert spoken == "ana dot lopez at mail dot example dot org"
        assert format_slot("email", "john_smith+x@my-site.com", CONTEXT) == (
            "john underscore smith plus x at my dash site dot com"
        )

    def test_format_falls_back_to_the_address_when_spelling_it_would_misread(self) -> None:
        # Spoken, "dot" would become "."; written, it reads back as itself.
        assert format_slot("email", "dot@example.com", CONTEXT) == "dot@example.com"
        assert format_slot("email", "one@example.com", CONTEXT) == "one@example.com"

    @settings(max_examples=300, deadline=None)
    @given(
        st.from_regex(r"[a-z][a-z0-9]{0,8}([._+-][a-z0-9]{1,8}){0,2}", fullmatch=True),
        st.lists(st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True), min_size=1, max_size=3),
        st.sampled_from(["com", "org", "net", "io", "es", "co.uk"]),
    )
    def test_round_trips(self, local: str, labels: list[str], suffix: str) -> None:
        try:
            value = validate_email(
                f"{local}@{'.'.join(labels)}.{suffix}", check_deliverability=False
            ).normalized
        except EmailNotValidError:
            assume(False)
            raise
        assert parse_slot("email", value, CONTEXT) == Parsed(value)
        assert parse_slot("email", format_slot("email", value, CONTEXT), CONTEXT) == Parsed(value)


class TestPhone:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("4155550123", "+14155550123"),
            ("(415) 555-0123", "+14155550123"),
            ("415.555.0123", "+14155550123"),
            ("+1 415 555 0123", "+14155550123"),
            ("1 415 555 0123", "+14155550123"),
            ("four one five five five five zero one two three", "+14155550123"),
            ("four one five five five five oh one two three", "+14155550123"),
            ("four one five double five five oh one two three", "+14155550123"),
            ("four one five triple five oh one two three", "+14155550123"),
            ("415 double 5 5 0123", "+14155550123"),
            ("four one five five five five oh one twenty three", "+14155550123"),
            ("one eight hundred two seven five two two seven three", "+18002752273"),
            ("my number is 415 555 0123 thanks", "+14155550123"),
            ("+44 20 7946 0958", "+442079460958"),
            ("my number is +44 20 7946 0958", "+442079460958"),
            ("plus four four two oh seven nine four six oh nine five eight", "+442079460958"),
            ("011 44 20 7946 0958", "+442079460958"),
        ],
    )
    def test_understands(self, text: str, expected: str) -> None:
        assert parsed("phone", text) == expected

    def test_national_numbers_read_in_the_context_region(self) -> None:
        assert parsed("phone", "020 7946 0958", UK) == "+442079460958"
        assert parsed("phone", "oh two oh seven nine four six oh nine five eight", UK) == (
            "+442079460958"
        )
        assert parsed("phone", "00 1 415 555 0123", UK) == "+14155550123"
        assert parsed("phone", "020 7946 0958") is None

    @pytest.mark.parametrize(
        "text",
        ["", "banana", "12345", "triple 0", "555 0123", "415 555 0123 and 415 555 0144", "1" * 40],
    )
    def test_refuses(self, text: str) -> None:
        assert parse_slot("phone", text, CONTEXT) is None

    def test_format_reads_digits_in_groups(self) -> None:
        assert format_slot("phone", "+14155550123", CONTEXT) == "4 1 5, 5 5 5, 0 1 2 3"
        assert format_slot("phone", "+442079460958", CONTEXT) == ("plus 4 4, 2 0, 7 9 4 6, 0 9 5 8")

    def test_format_wants_an_e164_number(self) -> None:
        with pytest.raises(ValueError, match=r"E\.164"):
            format_slot("phone", "call me", CONTEXT)

    @settings(max_examples=300, deadline=None)
    @given(
        st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)),
        st.sampled_from(
            [
                phonenumbers.PhoneNumberType.FIXED_LINE,
                phonenumbers.PhoneNumberType.MOBILE,
                phonenumbers.PhoneNumberType.TOLL_FREE,
            ]
        ),
        st.integers(0, 999),
        st.sampled_from(["same", "US", "GB", "DE"]),
    )
    def test_round_trips(self, region: str, kind: int, tail: int, reader: str) -> None:
        example = phonenumbers.example_number_for_type(region, kind)
        assume(example is not None)
        assert example is not None
        national = str(example.national_number)
        varied = national[:-3] + f"{tail:03d}" if len(national) > 4 else national
        number = phonenumbers.parse(f"+{example.country_code}{varied}")
        assume(phonenumbers.is_valid_number(number))
        value = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        context = SlotContext(now=NOW, region=region if reader == "same" else reader)
        assert parse_slot("phone", value, context) == Parsed(value)
        assert parse_slot("phone", format_slot("phone", value, context), context) == Parsed(value)
