"""A deterministic LLM that plays back a script: the default for tests, scenarios and demos.

Each request consumes the first unused reply whose `when_user` pattern matches the last user
message (a reply without a pattern always matches), so a scenario can describe both a fixed
sequence and "when the caller says X, answer Y".
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from voxflow.providers.llm.base import (
    ChatMessage,
    FunctionSpec,
    LLMChunk,
    LLMError,
    LLMResponse,
    ToolCallRequest,
)

SCRIPTED_MODEL = "scripted"


class ScriptedReply(BaseModel):
    """One scripted turn: some text, a function call, or both (as real models sometimes do)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str | None = None
    call: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    when_user: str | None = None
    """Case-insensitive regex searched in the last user message; None matches anything."""

    @field_validator("when_user")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        # A typo in a scenario file should fail at load time, not in the middle of a run.
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"`when_user` is not a valid regex: {error}") from None
        return pattern

    @model_validator(mode="after")
    def _says_something(self) -> Self:
        if self.text is None and self.call is None:
            raise ValueError("a scripted reply needs `text`, `call` or both")
        if self.arguments and self.call is None:
            raise ValueError("`arguments` only make sense with `call`")
        return self

    def matches(self, last_user_message: str | None) -> bool:
        if self.when_user is None:
            return True
        if last_user_message is None:
            return False
        return re.search(self.when_user, last_user_message, re.IGNORECASE) is not None


_REPLY_DATA = TypeAdapter(list[str | ScriptedReply])


@dataclass(frozen=True)
class ScriptedRequest:
    """What the scripted LLM was asked, kept so tests can assert on prompts."""

    messages: tuple[ChatMessage, ...]
    function_names: tuple[str, ...]


class ScriptedLLM:
    name = "scripted"

    def __init__(self, replies: Sequence[ScriptedReply]) -> None:
        self._replies = tuple(replies)
        self._used = [False] * len(self._replies)
        self._calls_made = 0
        self.requests: list[ScriptedRequest] = []

    @classmethod
    def from_data(cls, data: Sequence[Mapping[str, Any] | str]) -> ScriptedLLM:
        """Build from plain data as found in a YAML scenario; a bare string is a text reply.

        Raises pydantic's ValidationError (a ValueError) on unknown keys or bad patterns.
        """
        return cls(
            [
                ScriptedReply(text=item) if isinstance(item, str) else item
                for item in _REPLY_DATA.validate_python(list(data))
            ]
        )

    @property
    def unused_replies(self) -> tuple[ScriptedReply, ...]:
        """Replies never played: a scenario can flag a script the run did not reach."""
        return tuple(
            reply for reply, used in zip(self._replies, self._used, strict=True) if not used
        )

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        functions: Sequence[FunctionSpec] = (),
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> LLMResponse:
        return self._play(messages, functions)

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        functions: Sequence[FunctionSpec] = (),
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> AsyncGenerator[LLMChunk, None]:
        response = self._play(messages, functions)
        for piece in _word_pieces(response.text):
            yield LLMChunk(text=piece)
        yield LLMChunk(tool_calls=response.tool_calls, usage=response.usage, done=True)

    def _play(
        self, messages: Sequence[ChatMessage], functions: Sequence[FunctionSpec]
    ) -> LLMResponse:
        offered = tuple(function.name for function in functions)
        self.requests.append(ScriptedRequest(tuple(messages), offered))
        last_user = next(
            (message.content for message in reversed(messages) if message.role == "user"), None
        )
        position = self._next_matching(last_user)
        reply = self._replies[position]
        if reply.call is not None and reply.call not in offered:
            raise LLMError(
                f"scripted call {reply.call!r} is not among the offered functions {list(offered)}",
                retryable=False,
            )
        self._used[position] = True
        calls: tuple[ToolCallRequest, ...] = ()
        if reply.call is not None:
            self._calls_made += 1
            calls = (
                ToolCallRequest(
                    id=f"call_{self._calls_made}", name=reply.call, arguments=reply.arguments
                ),
            )
        return LLMResponse(text=reply.text or "", tool_calls=calls, model=SCRIPTED_MODEL)

    def _next_matching(self, last_user: str | None) -> int:
        for position, reply in enumerate(self._replies):
            if not self._used[position] and reply.matches(last_user):
                return position
        heard = "no user message" if last_user is None else f"last user message {last_user!r}"
        raise LLMError(f"script exhausted: no unused reply fits ({heard})", retryable=False)


def _word_pieces(text: str) -> list[str]:
    # Split before each word that follows whitespace, so the pieces join back to the exact text.
    return [piece for piece in re.split(r"(?<=\s)(?=\S)", text) if piece]
