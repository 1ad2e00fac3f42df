"""Reading calls back: the record of one call, and a scenario test that replays it."""

from __future__ import annotations

import json
from typing import Any

import yaml
from pydantic import JsonValue

from voxflow.engine.events import EVENTS, End, SetVariable, ToolCall
from voxflow.sessions.models import Call, CallTurn
from voxflow.sessions.schemas import CallOut, CallSummary, TurnOut


def summary(call: Call) -> CallSummary:
    return CallSummary(**_summary_fields(call))


def _summary_fields(call: Call) -> dict[str, Any]:
    duration = None
    if call.ended_at is not None:
        duration = round((call.ended_at - call.started_at).total_seconds() * 1000, 1)
    return {
        "id": call.id,
        "agent_id": call.agent_id,
        "workflow_id": call.workflow_id,
        "version": call.version_number,
        "mode": call.mode,
        "outcome": call.outcome,
        "started_at": call.started_at,
        "ended_at": call.ended_at,
        "duration_ms": duration,
        "turns": call.turn_count,
    }


def record(call: Call, turns: list[CallTurn]) -> CallOut:
    path: list[str] = []
    transcript: list[TurnOut] = []
    for turn in turns:
        events = json.loads(turn.events) if turn.role == "agent" else []
        path += [event["id"] for event in events if event.get("type") == "enter_node"]
        if turn.role == "agent" and not turn.text and not events:
            continue
        transcript.append(
            TurnOut(
                seq=turn.seq,
                role="user" if turn.role == "user" else "agent",
                text=turn.text,
                node_id=turn.node_id,
                at=turn.created_at,
                latency_ms=turn.latency_ms,
                events=events,
                timings=json.loads(turn.timings) if turn.timings else None,
            )
        )
    variables: dict[str, JsonValue] = json.loads(call.state).get("variables", {})
    return CallOut(
        **_summary_fields(call), variables=variables, node_path=path, transcript=transcript
    )


def scenario_yaml(call: Call, turns: list[CallTurn], document: dict[str, Any]) -> str:
    """A `voxflow test` scenario that replays the call, with its tool results stubbed.

    The version's document is inlined, so the file runs as it is; each step expects what the
    agent said, where the call stood and what changed, exactly as recorded.
    """
    steps: list[dict[str, Any]] = []
    step: dict[str, Any] = {}
    for turn in turns:
        if turn.role == "user":
            if step:
                steps.append(step)
            step = {"user": turn.text}
            continue
        events = EVENTS.validate_json(turn.events)
        expect: dict[str, Any] = {}
        if turn.text:
            expect["say"] = turn.text
        changed = {e.name: e.value for e in events if isinstance(e, SetVariable)}
        if changed:
            expect["vars"] = changed
        ended = [e for e in events if isinstance(e, End)]
        if ended:
            expect["end"] = ended[-1].outcome
        elif turn.node_id is not None:
            expect["node"] = turn.node_id
        stubs = {
            e.name: ({"error": e.error} if e.error is not None else {"result": e.result})
            for e in events
            if isinstance(e, ToolCall)
        }
        if stubs:
            step["tools"] = stubs
        if expect:
            step["expect"] = expect
    if step:
        steps.append(step)
    scenario = {
        "workflow": document,
        "name": f"replay of call {call.id} ({document.get('name')} v{call.version_number})",
        "variables": json.loads(call.initial_variables),
        # Relative answers ("tomorrow") mean what they meant during the call.
        "clock": call.started_at.isoformat(),
        "steps": steps,
    }
    return yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True)
