"""What the engine needs to fill `{{ secrets.NAME }}` in tool arguments, and how it hides them.

Secret values exist only in the arguments handed to the tool: the call record keeps the
arguments as rendered with `[secret NAME]` in their place, and a tool's error message has
every value replaced the same way before anyone sees it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

# Shorter values are left in error texts: replacing every "1" or "ab" would garble them, and a
# secret that short protects nothing anyway.
_MIN_MASKED_LENGTH = 4


class SecretUnavailable(Exception):
    """A secret cannot be read (not set, or the vault refused); the message names which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Secrets(Protocol):
    """The vault secrets of the call's org (`voxflow.vault.runtime.CallSecrets`)."""

    async def resolve(self, names: Collection[str]) -> Mapping[str, str]:
        """Every name's value; raises SecretUnavailable naming what is missing."""
        ...


def masked(names: Collection[str]) -> dict[str, str]:
    """What the call record shows in place of each secret."""
    return {name: f"[secret {name}]" for name in names}


def mask_values(text: str, values: Mapping[str, str]) -> str:
    """`text` with every secret value in it replaced by its `[secret NAME]`."""
    # Longest first, so a value containing another is replaced whole.
    for name, value in sorted(values.items(), key=lambda item: -len(item[1])):
        if len(value) >= _MIN_MASKED_LENGTH:
            text = text.replace(value, f"[secret {name}]")
    return text
