"""Problems found in a workflow document, each located by an RFC 6901 JSON pointer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Finding(BaseModel):
    """One problem in a document: what is wrong, and where."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Literal["error", "warning"] = Field(description="Errors block publishing.")
    code: str = Field(description="Stable machine-readable code, e.g. unknown_node.")
    message: str = Field(description="Human-readable explanation.")
    pointer: str = Field(description="RFC 6901 JSON pointer to the offending value.")


def json_pointer(*parts: str | int) -> str:
    """Build an RFC 6901 pointer; no parts is the whole document ("")."""
    # "~" must be escaped before "/" or the "~1" produced for "/" would be escaped again.
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)
