"""Tokenising transcripts: lower case, apostrophes dropped, numbers kept whole."""

from __future__ import annotations

import re

# Speech-to-text and keyboards disagree on apostrophes and minus signs; fold them first so every
# table below only has to spell one form ("thats", "dont", "oclock").
_APOSTROPHES = "\u2019\u2018\u02bc`"  # right and left quotation marks, modifier apostrophe
_DASHES = "\u2212\u2013\u2014"  # minus sign, en dash, em dash
_FOLD = str.maketrans(_APOSTROPHES + _DASHES, "'" * len(_APOSTROPHES) + "-" * len(_DASHES))

# A digit run may carry grouping or separators ("1,200", "3.5", "7:30", "3/14", "2026-03-03"),
# an exponent as Python writes floats ("1e-07") and an ordinal suffix ("3rd"). A leading "-" is
# a sign only where no word or number ends right before it, so "4-5" stays one token.
_TOKEN = re.compile(
    r"""
    (?P<number>
        (?:(?<![\w.,:/-])-)?
        (?<![0-9.,:/])[0-9]+(?:[,.:/-][0-9]+)*
        (?:e[+-]?[0-9]{1,3}(?![0-9]))?
        (?:(?:st|nd|rd|th)(?![^\W\d_]))?
    )
    | (?P<word>[^\W\d_]+(?:'[^\W\d_]+)*)
    | (?P<stop>[,;.!?]+)
    """,
    re.VERBOSE,
)

BOUNDARY = ","
"""Stands for any sentence punctuation, so "no, one" does not read as "no one"."""

FILLERS = frozenset({"um", "umm", "uh", "uhh", "uhm", "er", "erm", "hmm", "hm", "mm", "ah"})


def tokens(text: str) -> list[str]:
    """Split a transcript into lower-case words, number tokens and `BOUNDARY` markers."""
    found: list[str] = []
    for match in _TOKEN.finditer(text.translate(_FOLD).lower()):
        word = match.group("word")
        if word is not None:
            found.append(word.replace("'", ""))
        elif match.group("number") is not None:
            found.append(match.group("number"))
        elif not found or found[-1] != BOUNDARY:
            found.append(BOUNDARY)
    return found


def words(text: str) -> list[str]:
    """The tokens of `text` without boundaries or filler sounds, for phrase matching."""
    return [token for token in tokens(text) if token != BOUNDARY and token not in FILLERS]
