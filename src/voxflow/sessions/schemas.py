from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from voxflow.core.deps import NO_NUL
from voxflow.engine.events import Outcome

MAX_TEXT = 4000


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(max_length=64, pattern=NO_NUL, description="Agent to talk to")
    mode: Literal["text", "voice"] = Field("text", description="`text` or `voice`")
    transport: Literal["websocket", "livekit"] | None = Field(
        None,
        validate_default=True,
        description="Voice only: `websocket` (audio over `audio_url`, no LiveKit needed; the "
        "default) or `livekit` (a room served by `voxflow worker`)",
    )
    variables: dict[Annotated[str, Field(max_length=200)], JsonValue] = Field(
        {}, description="Initial values of declared variables, over the agent's overrides"
    )

    @field_validator("transport")
    @classmethod
    def _transport_is_for_voice(
        cls, transport: Literal["websocket", "livekit"] | None, info: ValidationInfo
    ) -> Literal["websocket", "livekit"] | None:
        voice = info.data.get("mode") == "voice"
        if voice and transport is None:
            return "websocket"
        if not voice and transport is not None:
            raise PydanticCustomError(
                "transport_needs_voice", "transport applies to voice sessions only"
            )
        return transport


class UserText(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT, pattern=NO_NUL)


# What a client sees of a turn: the same messages the WebSocket sends.
class AgentText(BaseModel):
    type: Literal["agent_text"] = "agent_text"
    text: str


class NodeEntered(BaseModel):
    type: Literal["node"] = "node"
    id: str


class VariableSet(BaseModel):
    type: Literal["variable"] = "variable"
    name: str
    value: JsonValue


class Transferred(BaseModel):
    type: Literal["transfer"] = "transfer"
    target: str


class Ended(BaseModel):
    type: Literal["end"] = "end"
    outcome: Outcome


class ErrorMessage(BaseModel):
    type: Literal["error"] = "error"
    code: str
    message: str


StreamMessage = Annotated[
    AgentText | NodeEntered | VariableSet | Transferred | Ended | ErrorMessage,
    Field(discriminator="type"),
]


class SessionStarted(BaseModel):
    session_id: str
    stream_url: str = Field(description="ws:// URL with a short-lived token for this session")
    stream_token_expires_at: datetime
    agent_id: str
    version: int = Field(description="Workflow version this session runs (fixed at start)")
    messages: list[StreamMessage] = Field(description="What the agent did on starting")
    ended: bool
    audio_url: str | None = Field(
        None, description="Voice over WebSocket: ws:// URL of the audio stream (docs/api.md)"
    )
    livekit_url: str | None = Field(None, description="Voice over LiveKit: the server to join")
    room: str | None = Field(None, description="Voice over LiveKit: the room of this call")
    token: str | None = Field(
        None, description="Voice over LiveKit: a short-lived token to join that room only"
    )


class TurnResult(BaseModel):
    messages: list[StreamMessage]
    ended: bool
    outcome: Outcome | None = None


class CallSummary(BaseModel):
    id: str
    agent_id: str
    workflow_id: str
    version: int
    mode: str
    outcome: Outcome | None
    started_at: datetime
    ended_at: datetime | None
    duration_ms: float | None
    turns: int


class TurnOut(BaseModel):
    seq: int
    role: Literal["user", "agent"]
    text: str
    node_id: str | None
    at: datetime
    latency_ms: float | None = Field(None, description="Agent turns: caller's words → reply")
    events: list[dict[str, Any]] = Field(
        [], description="Agent turns: nodes entered, variables set, tool calls, issues"
    )
    timings: dict[str, float] | None = Field(
        None,
        description="Voice agent turns: ms after the caller stopped speaking to the final "
        "transcript, the first TTS audio and the first audio frame sent; the engine's ms",
    )


class CallOut(CallSummary):
    variables: dict[str, JsonValue]
    node_path: list[str] = Field(description="Nodes entered, in order")
    transcript: list[TurnOut]
