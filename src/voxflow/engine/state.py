"""Where a call stands between two turns: a plain value that survives a JSON round trip.

A call is checkpointed after every turn (`State.model_dump(mode="json")`) and can resume in
another process from that JSON, on the same compiled version.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from voxflow.engine.events import Outcome

# The injected clock: an aware datetime. Tests and scenarios pass a fixed or stepping one.
Clock = Callable[[], datetime]

# How many past exchanges the model sees; older ones are dropped (the graph carries the rest).
HISTORY_LIMIT = 20


class Exchange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["user", "assistant"]
    text: str


class State(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(description="Id of the compiled version this call runs.")
    node_id: str | None = Field(None, description="Node waiting for the caller; None once ended.")
    variables: dict[str, JsonValue] = Field(default_factory=dict)
    turns: int = Field(0, description="Caller turns spent in the waiting node so far.")
    pending: JsonValue = Field(None, description="A collected value awaiting confirmation.")
    history: list[Exchange] = Field(default_factory=list)
    started_at: datetime
    outcome: Outcome | None = None

    @property
    def ended(self) -> bool:
        return self.outcome is not None

    def remember(self, role: Literal["user", "assistant"], text: str) -> None:
        if text:
            self.history.append(Exchange(role=role, text=text))
            del self.history[:-HISTORY_LIMIT]
