"""What running a scenario found: plain values the console report and JUnit XML are made of."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from voxflow.engine.events import Event

Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class Mismatch:
    key: str  # say, node, vars.<name>, end, tool, tools, within_ms, judge, call
    expected: str
    got: str


@dataclass(frozen=True)
class StepReport:
    number: int  # 1-based, as people count steps in the file
    user: str | None
    mismatches: tuple[Mismatch, ...]
    reply: str  # everything the agent said in the step
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Failure:
    summary: str  # one line: the JUnit failure message
    details: tuple[str, ...] = ()
    step: StepReport | None = None


@dataclass(frozen=True)
class Timing:
    step: int
    took_ms: float
    budget_ms: float


@dataclass(frozen=True)
class ScenarioResult:
    file: Path
    name: str | None  # None when the file itself could not be loaded
    status: Status
    duration_ms: float
    failure: Failure | None = None
    skip_reason: str | None = None
    timings: tuple[Timing, ...] = ()
