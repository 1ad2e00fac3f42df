"""Where the browser goes after the provider: only a path on our own origin.

An open redirect here would hand the user, fresh from signing in at the provider, to any site.
Browsers read `//host`, `/\\host` and `\\\\host` as another host, and may decode a path before
reading it, so the value is checked as given and again after each round of percent-decoding.
"""

from __future__ import annotations

from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

MAX_RETURN_TO = 2000
_MAX_DECODING_ROUNDS = 4
# Printable ASCII without the space: anything else belongs percent-encoded in a URL.
_PRINTABLE = frozenset(chr(code) for code in range(0x21, 0x7F))


def check_return_to(value: str) -> str:
    """`value` when it is a safe same-origin path; raises ValueError saying why not."""
    if len(value) > MAX_RETURN_TO:
        raise ValueError(f"must be at most {MAX_RETURN_TO} characters")
    if not set(value) <= _PRINTABLE:
        raise ValueError("must be printable ASCII without spaces (percent-encode the rest)")
    current = value
    for _ in range(_MAX_DECODING_ROUNDS):
        _check_form(current)
        decoded = unquote(current)
        if decoded == current:
            return value
        current = decoded
    raise ValueError("is encoded too many times")


def _check_form(value: str) -> None:
    # URL parsers drop tabs and newlines, so "/%09/host" could end up as "//host".
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise ValueError("must not contain control characters, encoded or not")
    if not value.startswith("/") or value.startswith("//"):
        raise ValueError("must be a path on this site, starting with a single '/'")
    if "\\" in value:
        raise ValueError("must not contain a backslash")
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        raise ValueError("must be a path on this site, without scheme or host")
    if "//" in parts.path:
        raise ValueError("must not contain '//' in its path")
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        raise ValueError("must not contain '.' or '..' segments")


def with_query(return_to: str, **params: str) -> str:
    """`return_to` with `params` added to its query (before any fragment)."""
    parts = urlsplit(return_to)
    added = urlencode(params)
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit(("", "", parts.path, query, parts.fragment))
