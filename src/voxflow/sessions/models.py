from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from voxflow.core.db import Base, UTCDateTime, utcnow


class Call(Base):
    """One conversation with an agent (a "session" while it runs), text or voice."""

    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_org_id_id", "org_id", "id"),
        Index("ix_calls_org_id_agent_id", "org_id", "agent_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    workflow_id: Mapped[str] = mapped_column(String(40))
    # Fixed when the call starts (pin, latest or canary) and never changed afterwards.
    version_number: Mapped[int] = mapped_column(Integer)
    version_id: Mapped[str] = mapped_column(String(40))
    mode: Mapped[str] = mapped_column(String(16))
    # Voice calls: "websocket" (embedded, browser) or "livekit" (a room served by a worker).
    transport: Mapped[str | None] = mapped_column(String(16))
    # Voice calls whose agent records: the WAV file under the data dir (deleted after retention).
    recording_path: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(16))
    # What the session started with (JSON), so a replay can start the same way.
    initial_variables: Mapped[str] = mapped_column(Text, default="{}")
    # The engine's state after the last turn (JSON): any process can take the next turn.
    state: Mapped[str] = mapped_column(Text)
    turn_count: Mapped[int] = mapped_column(Integer, default=0)
    # Hash of the short-lived token in the session's stream URL (browsers cannot send headers).
    stream_token_hash: Mapped[str | None] = mapped_column(String(64))
    stream_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CallTurn(Base):
    """One utterance of the caller or the agent, written the moment it happens."""

    __tablename__ = "call_turns"
    __table_args__ = (UniqueConstraint("call_id", "seq"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # "user" or "agent"
    text: Mapped[str] = mapped_column(Text)
    # The node waiting for the caller when the turn was taken (agent turns: after it).
    node_id: Mapped[str | None] = mapped_column(String(64))
    # Agent turns: the engine's events of the turn (JSON list: nodes, variables, tool calls).
    events: Mapped[str] = mapped_column(Text, default="[]")
    # Agent turns: time from the caller's words to the reply, ms.
    latency_ms: Mapped[float | None] = mapped_column()
    # Voice agent turns (JSON): ms from the end of the caller's speech to the final transcript,
    # the first LLM token, the first TTS byte and the first audio frame sent.
    timings: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
