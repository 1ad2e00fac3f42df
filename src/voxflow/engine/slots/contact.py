"""The `email` and `phone` slots: typed or spelled out, validated by their reference libraries."""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from voxflow.engine.slots.context import Parsed, SlotContext
from voxflow.engine.slots.numwords import SMALL_VALUES, TENS_VALUES, UNIT_VALUES
from voxflow.engine.slots.text import FILLERS

_SPOKEN_SYMBOLS = {
    "dot": ".",
    "period": ".",
    "point": ".",
    "underscore": "_",
    "dash": "-",
    "hyphen": "-",
    "minus": "-",
    "plus": "+",
}
_SPOKEN_DOMAINS = {"dotcom": ".com", "dotorg": ".org", "dotnet": ".net"}
_DIGITS = {word: str(value) for word, value in UNIT_VALUES.items()}
# Words after which the address itself starts: "my email is ...", "reach me at ...", "it's ...".
_LEAD_IN_ENDS = frozenset({"is", "at", "on", "to", "its", "thats", "@"})
_NO_APOSTROPHES = str.maketrans("", "", "'\u2019")
_LEAD_WORDS = frozenset({"yes", "yeah", "yep", "sure", "ok", "okay", "so", "well", "oh", "right"})
_TRAILING_WORDS = frozenset({"please", "thanks", "thank", "you", "cheers"})
_EDGE_PUNCTUATION = '"()<>[]{},;:!?'

_PHONE_TOKEN = re.compile(r"\+|[0-9]+|[^\W\d_]+(?:'[^\W\d_]+)*")
_SPOKEN_PHONE_DIGITS = {
    word: str(value) for word, value in (SMALL_VALUES | TENS_VALUES).items()
} | {
    "oh": "0",
    "o": "0",
    "hundred": "00",
    "thousand": "000",
}
_REPEATS = {"double": 2, "triple": 3}
_MAX_PHONE_DIGITS = 20


# An address typed or transcribed as written ("on@a.com") is taken as it is: read word by
# word, "on" or "one" in it would be treated as speech.
_WRITTEN_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+")


def parse_email(text: str) -> Parsed | None:
    written = _WRITTEN_EMAIL.findall(text)
    if len(written) > 1:
        return None  # two addresses: do not pick one
    if written:
        try:
            address = written[0].rstrip(".!?")
            return Parsed(validate_email(address, check_deliverability=False).normalized)
        except EmailNotValidError:
            pass  # maybe spoken pieces around a stray "@": read it as speech below
    pieces = _email_pieces(text)
    if "@" not in pieces:
        pieces = ["@" if piece.lower() == "at" else piece for piece in pieces]
    if "@" not in pieces:
        return None
    separator = len(pieces) - 1 - pieces[::-1].index("@")
    if _names_a_domain(pieces[pieces.index("@") + 1 : separator]):
        return None  # two addresses ("ana at x dot com or bob at y dot org"): do not pick one
    local = _local_part(pieces[:separator])
    domain = pieces[separator + 1 :]
    while len(domain) > 1 and domain[-1].lower() in _TRAILING_WORDS:
        domain.pop()
    address = "".join(map(_spoken_piece, local)) + "@" + "".join(map(_spoken_piece, domain))
    try:
        return Parsed(validate_email(address, check_deliverability=False).normalized)
    except EmailNotValidError:
        return None


def format_email(value: str) -> str:
    """ "ana dot lopez at example dot com", or the address itself when that reads back wrong."""
    spoken = " ".join(
        {".": "dot", "_": "underscore", "-": "dash", "+": "plus", "@": "at"}.get(part, part)
        for part in re.split(r"([._+@-])", value)
        if part
    )
    return spoken if parse_email(spoken) == Parsed(value) else value


def parse_phone(text: str, context: SlotContext) -> Parsed | None:
    digits = _phone_digits(text)
    if digits is None:
        return None
    try:
        number = phonenumbers.parse(digits, context.region.upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return Parsed(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def format_phone(value: str, context: SlotContext) -> str:
    """Digit by digit in the usual groups: "4 1 5, 5 5 5, 0 1 2 3" or "plus 4 4, 2 0, ..."."""
    try:
        number = phonenumbers.parse(value)
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"{value!r} is not an E.164 phone number") from error
    local = phonenumbers.region_code_for_number(number) == context.region.upper()
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if local
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    written = phonenumbers.format_number(number, style)
    groups = ", ".join(" ".join(group) for group in re.findall(r"[0-9]+", written))
    spoken = groups if local else f"plus {groups}"
    return spoken if parse_phone(spoken, context) == Parsed(value) else value


def _email_pieces(text: str) -> list[str]:
    pieces: list[str] = []
    for token in text.split():
        token = token.strip(_EDGE_PUNCTUATION).rstrip(".")
        if not token or token.lower() in FILLERS:
            continue
        pieces.extend(piece for piece in re.split(r"(@)", token) if piece)
    return pieces


def _names_a_domain(pieces: list[str]) -> bool:
    """Whether words between an earlier "at" and the last one hold a dot, as a domain would.

    An earlier "at" is usually a lead-in ("reach me at ana at ..."), but after a domain it
    means the caller gave two addresses.
    """
    return any("." in _spoken_piece(piece) for piece in pieces)


def _local_part(pieces: list[str]) -> list[str]:
    starts = [
        index
        for index, piece in enumerate(pieces)
        if piece.lower().translate(_NO_APOSTROPHES) in _LEAD_IN_ENDS
    ]
    local = pieces[starts[-1] + 1 :] if starts else pieces
    while len(local) > 1 and local[0].lower() in _LEAD_WORDS:
        local = local[1:]
    return local


def _spoken_piece(piece: str) -> str:
    lowered = piece.lower()
    return (
        _SPOKEN_SYMBOLS.get(lowered) or _SPOKEN_DOMAINS.get(lowered) or _DIGITS.get(lowered, piece)
    )


def _phone_digits(text: str) -> str | None:
    """The number as "+" and digits; spoken digits, "oh", "double five", "triple 0" included.

    Each word stands for its own digits ("eight hundred" is 800, "twenty three" 23), never for
    a quantity: callers read numbers out in groups, so "eight hundred two" means 800-2.
    """
    words = [token.replace("'", "") for token in _PHONE_TOKEN.findall(text.lower())]
    plus = False
    digits = ""
    repeat = 1
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        plus = plus or (word in ("+", "plus") and not digits)
        written = _SPOKEN_PHONE_DIGITS.get(word, word if word.isdigit() else "")
        if word in TENS_VALUES and index < len(words) and UNIT_VALUES.get(words[index], 0) > 0:
            written = str(TENS_VALUES[word] + UNIT_VALUES[words[index]])
            index += 1
        digits += written * repeat if len(written) == 1 else written
        repeat = _REPEATS.get(word, 1) if not written else 1
        if len(digits) > _MAX_PHONE_DIGITS:
            return None
    if not digits:
        return None
    return f"+{digits}" if plus else digits
