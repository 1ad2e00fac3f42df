"""What the engine reports for a turn: small typed events joined in one discriminated union.

The same union is stored with each turn of a call and crosses the WebSocket to clients, so every
event is plain JSON (`Event` validates and dumps it).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter

Outcome = Literal["completed", "transferred", "failed", "timeout", "abandoned"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Say(_Event):
    """The agent speaks (or, in text mode, writes) this line."""

    type: Literal["say"] = "say"
    text: str
    node_id: str


class EnterNode(_Event):
    type: Literal["enter_node"] = "enter_node"
    id: str


class SetVariable(_Event):
    type: Literal["set_variable"] = "set_variable"
    name: str
    value: JsonValue


class ToolCall(_Event):
    """A tool was called: exactly one of `result` and `error` tells how it went."""

    type: Literal["tool_call"] = "tool_call"
    node_id: str
    name: str
    args: dict[str, JsonValue]
    result: JsonValue = None
    error: str | None = None
    duration_ms: float = 0.0


class Transfer(_Event):
    type: Literal["transfer"] = "transfer"
    target: str
    mode: Literal["warm", "cold"] = "cold"


class End(_Event):
    type: Literal["end"] = "end"
    outcome: Outcome
    reason: str | None = None


class RuntimeIssue(_Event):
    """Something went wrong inside the workflow (a template, a condition, the model).

    The call carries on along the node's error path; the issue is recorded with the turn.
    """

    type: Literal["issue"] = "issue"
    node_id: str
    code: str
    message: str


Event = Annotated[
    Say | EnterNode | SetVariable | ToolCall | Transfer | End | RuntimeIssue,
    Field(discriminator="type"),
]
EVENTS: TypeAdapter[list[Event]] = TypeAdapter(list[Event])


def spoken_text(events: list[Event]) -> str:
    """Everything the agent said in these events, as one reply."""
    return " ".join(event.text for event in events if isinstance(event, Say))
