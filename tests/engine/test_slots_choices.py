"""Boolean, enum and string slots: answers matched against words."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from voxflow.engine.slots import Parsed, SlotContext, format_slot, parse_slot

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=ZoneInfo("Europe/Madrid"))
CONTEXT = SlotContext(now=NOW, timezone="Europe/Madrid")
MENU = {
    "margherita": ["plain pizza", "cheese pizza"],
    "pepperoni": ["salami"],
    "cappuccino": [],
    "take_away": ["to go", "takeaway", "pick up"],
    "large": [],
    "extra_large": ["xl"],
    "red": [],
    "blue": [],
}
MENU_CONTEXT = SlotContext(now=NOW, choices=MENU)


def parsed(kind: str, text: str, context: SlotContext = CONTEXT) -> object:
    result = parse_slot(kind, text, context)
    return None if result is None else result.value


class TestBoolean:
    @pytest.mark.parametrize(
        "text",
        [
            "yes", "Yes.", "yeah", "yep", "yup", "sure", "correct", "right", "that's right",
            "that\u2019s right", "thats correct", "absolutely", "of course", "ok", "okay", "OK!",
            "affirmative", "please do", "go ahead", "yes please", "um yeah sure", "uh huh",
            "no problem", "no worries", "yeah that's right", "sounds good", "not wrong",
            "yes, yes", "sure why not", "mm hmm",
        ],
    )  # fmt: skip
    def test_yes(self, text: str) -> None:
        assert parsed("boolean", text) is True

    @pytest.mark.parametrize(
        "text",
        [
            "no", "No.", "nope", "nah", "not really", "negative", "don't", "please don't",
            "incorrect", "wrong", "no thanks", "no thank you", "not correct", "not right",
            "that's not right", "that isn't correct", "absolutely not", "of course not",
            "I'm not", "i don't think so", "no no no", "not at all", "never", "not quite right",
        ],
    )  # fmt: skip
    def test_no(self, text: str) -> None:
        assert parsed("boolean", text) is False

    @pytest.mark.parametrize(
        "text",
        [
            "", "banana", "please", "maybe", "perhaps", "i'm not sure", "i don't know",
            "yes no", "yeah no", "no that's right", "no, yes", "yes maybe", "sure, not sure",
            "it's not that, yes",
        ],
    )  # fmt: skip
    def test_mixed_or_unknown_is_none(self, text: str) -> None:
        assert parse_slot("boolean", text, CONTEXT) is None

    @pytest.mark.parametrize(("value", "spoken"), [(True, "yes"), (False, "no")])
    def test_round_trips(self, value: bool, spoken: str) -> None:
        assert format_slot("boolean", value, CONTEXT) == spoken
        assert parse_slot("boolean", spoken, CONTEXT) == Parsed(value)

    def test_format_wants_a_bool(self) -> None:
        with pytest.raises(ValueError):  # noqa: PT011
            format_slot("boolean", 1, CONTEXT)


class TestEnum:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("margherita", "margherita"),
            ("Margherita please", "margherita"),
            ("a cheese pizza", "margherita"),
            ("i'd like the pepperoni", "pepperoni"),
            ("salami", "pepperoni"),
            ("take away", "take_away"),
            ("Take_Away", "take_away"),
            ("to go please", "take_away"),
            ("i'll pick up", "take_away"),
            ("extra large", "extra_large"),  # "large" inside a longer mention does not count
            ("xl", "extra_large"),
            ("large", "large"),
            ("a capuccino", "cappuccino"),  # misheard: fuzzy match
            ("cappucino", "cappuccino"),
            ("peperoni", "pepperoni"),
            ("two pepperonis", "pepperoni"),
            ("a margarita", None),  # 84: just under the threshold
        ],
    )
    def test_understands(self, text: str, expected: str | None) -> None:
        assert parsed("enum", text, MENU_CONTEXT) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "banana",
            "sushi",
            "red or blue",
            "not red, blue",
            "large or extra large",
            "pepperoni and margherita",
            "rod",  # as close to "red" as to nothing else, but far below the threshold
        ],
    )
    def test_refuses(self, text: str) -> None:
        assert parse_slot("enum", text, MENU_CONTEXT) is None

    def test_fuzzy_ties_between_values_are_refused(self) -> None:
        context = SlotContext(now=NOW, choices={"abcdefgh": [], "abcdefgj": []})
        assert parse_slot("enum", "abcdefgk", context) is None
        assert parse_slot("enum", "abcdefgh", context) == Parsed("abcdefgh")

    def test_keys_with_digits_are_told_apart(self) -> None:
        context = SlotContext(now=NOW, choices={"size_1": ["small"], "size_2": ["big"]})
        assert parse_slot("enum", "size_2", context) == Parsed("size_2")
        assert parse_slot("enum", "size 1 please", context) == Parsed("size_1")

    def test_without_choices_nothing_matches(self) -> None:
        assert parse_slot("enum", "red", CONTEXT) is None
        assert parse_slot("enum", "red", SlotContext(now=NOW, choices={})) is None

    def test_format_says_the_first_synonym(self) -> None:
        assert format_slot("enum", "take_away", MENU_CONTEXT) == "to go"
        assert format_slot("enum", "large", MENU_CONTEXT) == "large"
        assert format_slot("enum", "extra_large", MENU_CONTEXT) == "xl"
        with pytest.raises(ValueError):  # noqa: PT011
            format_slot("enum", "sushi", MENU_CONTEXT)

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(
            st.from_regex(r"[a-z]{3,10}", fullmatch=True).filter(
                lambda word: word not in {"umm", "uhh", "uhm", "erm", "hmm"}
            ),
            min_size=2,
            max_size=24,
            unique=True,
        ),
        st.data(),
    )
    def test_round_trips(self, vocabulary: list[str], data: st.DataObject) -> None:
        key_count = data.draw(st.integers(1, len(vocabulary) // 2))
        keys, spare = vocabulary[:key_count], vocabulary[key_count:]
        choices: dict[str, list[str]] = {key: [] for key in keys}
        for word in spare:
            choices[data.draw(st.sampled_from(keys))].append(word)
        context = SlotContext(now=NOW, choices=choices)
        value = data.draw(st.sampled_from(keys))
        assert parse_slot("enum", format_slot("enum", value, context), context) == Parsed(value)
        assert parse_slot("enum", value, context) == Parsed(value)
        for synonym in choices[value]:
            assert parse_slot("enum", f"um {synonym} please", context) == Parsed(value)


class TestString:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Ana", "Ana"),
            ("  Ana. ", "Ana"),
            ("it's Ana", "Ana"),
            ("It\u2019s Ana!", "Ana"),
            ("its Ana", "Ana"),
            ("it is Ana Lopez", "Ana Lopez"),
            ("my name is Ana Lopez", "Ana Lopez"),
            ("Um, my name is Ana.", "Ana"),
            ("uh this is Ana", "Ana"),
            ("I'm Ana", "Ana"),
            ("im Ana", "Ana"),
            ("i am Ana", "Ana"),
            ("call me Ishmael", "Ishmael"),
            ("you can call me Al", "Al"),
            ("it's it's Ana", "Ana"),
            ("Imogen", "Imogen"),
            ("Well-Being Clinic", "Well-Being Clinic"),
            ("it's", "it's"),  # nothing follows, so it is the answer itself
            ("O'Brien", "O'Brien"),
            ("“Ana”", "Ana"),
            ("$50 off", "$50 off"),
        ],
    )
    def test_understands(self, text: str, expected: str) -> None:
        assert parsed("string", text) == expected

    @pytest.mark.parametrize("text", ["", "   ", "...", "?!", "\u200b"])
    def test_empty_is_none(self, text: str) -> None:
        assert parse_slot("string", text, CONTEXT) is None

    @settings(max_examples=300, deadline=None)
    @given(st.text())
    def test_what_it_reads_reads_back_the_same(self, text: str) -> None:
        result = parse_slot("string", text, CONTEXT)
        assume(result is not None)
        assert result is not None
        assert isinstance(result.value, str)
        assert parse_slot("string", format_slot("string", result.value, CONTEXT), CONTEXT) == (
            result
        )

    @settings(max_examples=200, deadline=None)
    @given(st.from_regex(r"[A-Z][a-z]{1,9}( [A-Z][a-z]{1,9}){0,2}", fullmatch=True))
    def test_names_round_trip(self, name: str) -> None:
        assume(name.split()[0].lower() not in {"um", "uh", "er", "hm", "ah", "oh", "well", "im"})
        assert parse_slot("string", format_slot("string", name, CONTEXT), CONTEXT) == Parsed(name)
        assert parse_slot("string", f"my name is {name}", CONTEXT) == Parsed(name)
