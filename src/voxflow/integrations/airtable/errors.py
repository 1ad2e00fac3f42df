"""What went wrong talking to Airtable, in words a workflow author can act on.

Airtable reports failures as `{"error": {"type": "UNKNOWN_FIELD_NAME", "message": "..."}}` or
as a bare `{"error": "NOT_FOUND"}`; its messages name the field or value at fault, so they are
kept (shortened) after our own explanation of the type.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxflow.tools.registry import ToolError

MAX_DETAIL_LENGTH = 300

# Airtable answers 403 INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND for a table or base that does
# not exist as well as for one the token may not use: it does not tell the two apart.
_NOT_FOUND_TYPES = frozenset(
    {
        "NOT_FOUND",
        "MODEL_ID_NOT_FOUND",
        "TABLE_NOT_FOUND",
        "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
    }
)
_EXPLANATIONS = {
    "UNKNOWN_FIELD_NAME": "no such field",
    "INVALID_VALUE_FOR_COLUMN": "a value does not fit its field",
    "INVALID_MULTIPLE_CHOICE_OPTIONS": (
        "a value is not one of the field's options (typecast: true adds new options)"
    ),
    "INVALID_FILTER_BY_FORMULA": "the formula is not valid",
    "INVALID_SORT": "the sort names an unknown field or direction",
    "ROW_DOES_NOT_EXIST": "no such record",
    "INVALID_RECORDS": "the records are not valid",
    "INVALID_PERMISSIONS": "the connection may not do this",
}


class AirtableUnauthorized(ToolError):
    """Airtable answered 401: the access token is expired or revoked (refreshing may help)."""


class RateLimited(Exception):
    """Airtable answered 429; `wait_s` is how long it asks us to stay away."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"rate limited for {wait_s:g} s")
        self.wait_s = wait_s


class Unavailable(Exception):
    """A 5xx or a transport failure: worth another attempt, unless the request may have been
    carried out (`maybe_processed`) and repeating it is not harmless."""

    def __init__(self, message: str, *, maybe_processed: bool) -> None:
        super().__init__(message)
        self.message = message
        self.maybe_processed = maybe_processed


@dataclass(frozen=True)
class Target:
    """What a request was about, to name it in error messages."""

    base: str | None = None
    table: str | None = None

    def describe(self) -> str:
        if self.table is not None:
            return f"table {self.table!r} of base {self.base}"
        if self.base is not None:
            return f"base {self.base}"
        return "your bases"


def refusal(status: int, payload: object, target: Target) -> ToolError:
    """The ToolError for a 4xx answer other than 401 and 429."""
    kind, detail = error_parts(payload)
    where = target.describe()
    if status == 404 or kind in _NOT_FOUND_TYPES:
        return ToolError(
            f"Airtable found no {where}, or the connection may not use it; check the base id "
            "and the table name, and that the base was shared with the connection"
        )
    explanation = _EXPLANATIONS.get(kind or "", f"request refused ({status}{_suffix(kind)})")
    message = f"Airtable {where}: {explanation}"
    if detail:
        message += f": {detail}"
    return ToolError(message)


def error_parts(payload: object) -> tuple[str | None, str | None]:
    """(type, message) of an Airtable error body; None for what it does not say."""
    if not isinstance(payload, dict):
        return None, None
    error = payload.get("error")
    if isinstance(error, str):
        return error, None
    if not isinstance(error, dict):
        return None, None
    kind = error.get("type")
    detail = error.get("message")
    return (
        kind if isinstance(kind, str) else None,
        _shorten(detail) if isinstance(detail, str) else None,
    )


def _suffix(kind: str | None) -> str:
    return f" {kind}" if kind else ""


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= MAX_DETAIL_LENGTH:
        return text
    return text[: MAX_DETAIL_LENGTH - 1] + "…"
