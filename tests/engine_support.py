"""Engine test helpers: documents compiled in memory, a settable clock, stub tools."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import JsonValue

from voxflow.dsl import WorkflowDocument
from voxflow.dsl.compile import CompiledVersion, compile_version
from voxflow.engine.events import Event, Say
from voxflow.engine.interpreter import Engine

LUIGIS: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parents[1] / "examples" / "luigis.yaml").read_text()
)


def luigis() -> dict[str, Any]:
    return copy.deepcopy(LUIGIS)


def compiled(document: dict[str, Any], version_id: str = "ver_test") -> CompiledVersion:
    return compile_version(WorkflowDocument.model_validate(document), version_id)


def said(events: list[Event]) -> str:
    return " ".join(event.text for event in events if isinstance(event, Say))


def of_type(events: list[Event], kind: type[Any]) -> list[Any]:
    return [event for event in events if isinstance(event, kind)]


class Clock:
    """Thursday 26 November 2026, 15:00 in Madrid, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 15, 0, tzinfo=ZoneInfo("Europe/Madrid"))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class StubTools:
    """Answers tool calls from canned results; records what it was asked."""

    def __init__(self, results: Mapping[str, JsonValue | Exception]) -> None:
        self.results = dict(results)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, name: str, args: Mapping[str, Any]) -> JsonValue:
        self.calls.append((name, dict(args)))
        result = self.results[name]
        if isinstance(result, Exception):
            raise result
        return result


def engine_for(document: dict[str, Any], clock: Clock, **kwargs: Any) -> Engine:
    return Engine(compiled(document), clock=clock, **kwargs)
