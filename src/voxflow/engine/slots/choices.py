"""The `boolean`, `enum` and `string` slots: answers matched against words rather than numbers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from functools import lru_cache

from rapidfuzz import fuzz, process

from voxflow.engine.slots.context import Parsed
from voxflow.engine.slots.text import BOUNDARY, tokens, words

_YES = (
    "yes", "yeah", "yea", "ya", "yep", "yup", "aye", "sure", "surely", "correct", "right",
    "absolutely", "definitely", "certainly", "of course", "ok", "okay", "alright", "all right",
    "affirmative", "please do", "go ahead", "exactly", "indeed", "true", "uh huh", "mhm",
    "mm hmm", "sounds good", "perfect", "fine", "why not", "no problem", "no worries",
    "i do", "that is it", "thats it",
)  # fmt: skip
_NO = (
    "no", "nope", "nah", "naw", "not really", "negative", "dont", "do not", "no thanks",
    "no thank you", "incorrect", "wrong", "never", "false", "not at all", "absolutely not",
    "of course not", "definitely not", "certainly not", "i dont think so", "no way",
)  # fmt: skip
_UNSURE = (
    "maybe", "perhaps", "possibly", "probably", "not sure", "unsure", "dont know", "dunno",
    "no idea", "i guess", "depends", "it depends",
)  # fmt: skip
_NEGATORS = frozenset({"not", "isnt", "arent", "wasnt"})
_NEGATION_REACH = 2
"""A "not" flips a yes/no phrase starting at most this many words later ("not quite right")."""
_NEGATION_ENDS = _NEGATORS | {BOUNDARY}
_POLARITY: dict[tuple[str, ...], bool | None] = {
    **{tuple(phrase.split()): True for phrase in _YES},
    **{tuple(phrase.split()): False for phrase in _NO},
    **{tuple(phrase.split()): None for phrase in _UNSURE},
}
_LONGEST_PHRASE = max(map(len, _POLARITY))

FUZZY_THRESHOLD = 85.0
"""Minimum rapidfuzz `ratio` (0-100) for a misheard enum choice to count as that choice."""

_LEAD_INS = (
    "my name is", "my full name is", "the name is", "name is", "my name's", "name's",
    "it's", "it is", "this is", "that's", "that is", "i'm", "i am", "you can call me", "call me",
)  # fmt: skip
_LEADING_SOUNDS = ("um", "umm", "uh", "uhh", "uhm", "er", "erm", "hmm", "hm", "ah", "oh", "well")
# One lead-in or filler sound at the start, followed by a separator and at least one more
# character; apostrophes are optional because transcripts write "its" and "im" as often.
_LEADING = re.compile(
    r"(?:"
    + "|".join(
        re.escape(phrase).replace("'", "['\u2019]?").replace(r"\ ", r"\s+")
        for phrase in sorted(_LEAD_INS + _LEADING_SOUNDS, key=len, reverse=True)
    )
    + r")(?=[\s,.;:!?]+\S)[\s,.;:!?]+",
    re.IGNORECASE,
)


def parse_boolean(text: str) -> Parsed | None:
    """Every yes/no phrase must agree; "not" flips a phrase starting within two words of it."""
    # Filler sounds stay ("uh huh" and "mm hmm" are answers), and so does punctuation, which
    # ends the reach of a "not": in "it's not that, yes" the "not" does not flip the "yes".
    spoken = tokens(text)
    verdicts: list[bool | None] = []
    negator_at: int | None = None
    index = 0
    while index < len(spoken):
        length, verdict = _phrase_at(spoken, index)
        if negator_at is not None and (length or spoken[index] in _NEGATION_ENDS):
            if length and index - negator_at <= _NEGATION_REACH and verdict is not None:
                verdict = not verdict
            else:
                verdicts.append(False)  # a "not" that negates nothing we know ("i'm not") is a no
            negator_at = None
        if length:
            verdicts.append(verdict)
            index += length
            continue
        if spoken[index] in _NEGATORS:
            negator_at = index
        index += 1
    if negator_at is not None:
        verdicts.append(False)
    if not verdicts or None in verdicts or len(set(verdicts)) != 1:
        return None
    return Parsed(verdicts[0] is True)


def format_boolean(value: bool) -> str:
    return "yes" if value else "no"


def parse_enum(text: str, choices: Mapping[str, Sequence[str]] | None) -> Parsed | None:
    """Whole-word mentions of a value or synonym first; else the single best fuzzy match.

    A mention inside a longer mention of another value does not count ("extra large" is not
    "large"); mentions of two different values, or a fuzzy tie, give None.
    """
    if not choices:
        return None
    table = _phrase_table(tuple((key, tuple(synonyms)) for key, synonyms in choices.items()))
    spoken = tuple(words(text))
    if not spoken:
        return None
    mentions = [
        (start, start + len(phrase), key)
        for start in range(len(spoken))
        for phrase, key in table.by_first_word.get(spoken[start], ())
        if spoken[start : start + len(phrase)] == phrase
    ]
    if mentions:
        keys = {
            key
            for start, end, key in mentions
            if not any(
                other_key != key and other_start <= start and end <= other_end
                and other_end - other_start > end - start
                for other_start, other_end, other_key in mentions
            )
        }  # fmt: skip
        return Parsed(keys.pop()) if len(keys) == 1 else None
    return _fuzzy_enum(spoken, table)


def format_enum(value: str, choices: Mapping[str, Sequence[str]] | None) -> str:
    """The value's first synonym (the human wording) if it reads back, else the value."""
    if not choices or value not in choices:
        raise ValueError(f"{value!r} is not one of the choices")
    for phrase in (*choices[value], value.replace("_", " ")):
        if parse_enum(phrase, choices) == Parsed(value):
            return phrase
    return value


def parse_string(text: str) -> Parsed | None:
    """The answer without surrounding punctuation, filler sounds or a lead-in ("it's Ana")."""
    answer = _trim(text)
    while True:
        leading = _LEADING.match(answer)
        if leading is None:
            break
        answer = _trim(answer[leading.end() :])
    return Parsed(answer) if answer else None


def format_string(value: str) -> str:
    return value


class _PhraseTable:
    def __init__(self, phrases: list[tuple[tuple[str, ...], str]]) -> None:
        self.by_first_word: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for phrase, key in phrases:
            self.by_first_word.setdefault(phrase[0], []).append((phrase, key))
        self.texts = [" ".join(phrase) for phrase, _ in phrases]
        self.keys = [key for _, key in phrases]
        self.lengths = sorted({len(phrase) for phrase, _ in phrases})


@lru_cache(maxsize=256)
def _phrase_table(choices: tuple[tuple[str, tuple[str, ...]], ...]) -> _PhraseTable:
    phrases: list[tuple[tuple[str, ...], str]] = []
    for key, synonyms in choices:
        for wording in (key.replace("_", " "), *synonyms):
            phrase = tuple(words(wording))
            if phrase:
                phrases.append((phrase, key))
    return _PhraseTable(phrases)


def _fuzzy_enum(spoken: tuple[str, ...], table: _PhraseTable) -> Parsed | None:
    """Compare every phrase with every window of the answer about as long as the phrase."""
    windows = {
        " ".join(spoken[start : start + size])
        for length in table.lengths
        for size in (length - 1, length, length + 1)
        if 0 < size <= len(spoken)
        for start in range(len(spoken) - size + 1)
    }
    best: dict[str, float] = {}
    for window in windows:
        for _, score, position in process.extract(
            window, table.texts, scorer=fuzz.ratio, score_cutoff=FUZZY_THRESHOLD, limit=None
        ):
            key = table.keys[position]
            best[key] = max(score, best.get(key, 0.0))
    if not best:
        return None
    top = max(best.values())
    winners = [key for key, score in best.items() if score == top]
    return Parsed(winners[0]) if len(winners) == 1 else None


def _phrase_at(spoken: list[str], index: int) -> tuple[int, bool | None]:
    for length in range(min(_LONGEST_PHRASE, len(spoken) - index), 0, -1):
        phrase = tuple(spoken[index : index + length])
        if phrase in _POLARITY:
            return length, _POLARITY[phrase]
    return 0, None


def _trim(text: str) -> str:
    start, end = 0, len(text)
    while start < end and _is_edge(text[start]):
        start += 1
    while end > start and _is_edge(text[end - 1]):
        end -= 1
    return text[start:end]


def _is_edge(character: str) -> bool:
    """Whitespace, punctuation and invisible characters are trimmed; letters and symbols stay."""
    return character.isspace() or unicodedata.category(character)[0] in "PZC"
