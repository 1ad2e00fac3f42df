"""The LLM interface the workflow engine is written against, independent of any vendor SDK.

The engine uses an LLM in three ways: a `conversation` node offers its routes as functions
(the model answers with text or calls one of them), a `collect` node asks for a typed value
through a function call with a JSON schema, and scenario judges use a plain completion.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

# OpenAI's rule for function names; checked here so a bad route id fails before any request.
FUNCTION_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"


def _empty_object_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolCallRequest(_Frozen):
    """A function call the model asked for, with its arguments already decoded from JSON."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ChatMessage(_Frozen):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: tuple[ToolCallRequest, ...] = ()
    """Set on assistant messages that called functions, so the history can be replayed."""
    tool_call_id: str | None = None
    """Set on role="tool" messages: which call this is the result of."""

    @model_validator(mode="after")
    def _check_role_fields(self) -> Self:
        # Providers reject these combinations with an opaque 400; fail where the mistake is made.
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("tool_call_id is required on tool messages and only there")
        return self


class FunctionSpec(_Frozen):
    """A function offered to the model; `parameters` is a JSON Schema object."""

    name: str = Field(pattern=FUNCTION_NAME_PATTERN)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=_empty_object_schema)


class LLMResponse(_Frozen):
    text: str = ""
    tool_calls: tuple[ToolCallRequest, ...] = ()
    model: str = ""
    usage: dict[str, int] = Field(default_factory=dict)
    """`prompt_tokens` / `completion_tokens` when the server reports them."""


class LLMChunk(_Frozen):
    """One piece of a streamed reply.

    Text arrives incrementally; tool calls only on the final chunk (`done=True`), complete,
    because a half-received call is useless to the engine.
    """

    text: str = ""
    tool_calls: tuple[ToolCallRequest, ...] = ()
    done: bool = False
    usage: dict[str, int] = Field(default_factory=dict)
    """On the final chunk, when the server reports usage for streams."""


class LLMError(Exception):
    """Any provider failure. `retryable` tells the caller whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status

    def __repr__(self) -> str:
        return f"LLMError({self.message!r}, retryable={self.retryable}, status={self.status})"


class LLM(Protocol):
    name: str

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        functions: Sequence[FunctionSpec] = (),
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> LLMResponse: ...

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        functions: Sequence[FunctionSpec] = (),
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> AsyncGenerator[LLMChunk, None]:
        """Text as it arrives, then one final chunk (`done=True`) with any tool calls.

        An async generator so a caller that stops early (barge-in) can `aclose()` it and
        release the connection at once."""
        ...
