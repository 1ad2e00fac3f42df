"""The engine: start a call, take the caller's turns, report what happened as events.

    engine = Engine(version, llm=None, tools=registry, clock=clock)
    state, events = await engine.start({"caller": "+34…"})
    events = await engine.handle_user_turn(state, "a table for four please")

`state` is updated in place and is plain JSON between turns. Nothing here raises because of
what a workflow or a caller does: template, condition and tool failures become `RuntimeIssue`
events and the call continues on the node's error path (`on_error`), or ends `failed` when the
node has none; a model that fails (after its client's one retry) is recorded the same way and the
node goes on without it (an apology, then its `fallback`). A voice call passes a `Speech` to
`handle_user_turn` to hear each line as soon as the engine decides it (`engine.speech`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import JsonValue

from voxflow.dsl.compile import CompiledVersion
from voxflow.dsl.schema import Node
from voxflow.dsl.templates import TemplateError
from voxflow.engine.events import End, EnterNode, Event, Outcome, RuntimeIssue, Say, SetVariable
from voxflow.engine.nodes import enter, on_user_turn
from voxflow.engine.routing import Candidate, best_example_match, check_route
from voxflow.engine.secrets import Secrets
from voxflow.engine.speech import Speech
from voxflow.engine.state import Clock, State
from voxflow.providers.llm.base import LLM

# Automatic nodes (say, branch, action) in a row before the engine stops a runaway loop; the
# linter refuses loops without a user turn, this is the backstop for what it cannot see.
MAX_STEPS_PER_TURN = 200


class Tools(Protocol):
    """What the engine needs of a tool registry (`voxflow.tools.ToolRegistry`, or stubs)."""

    async def call(self, name: str, args: Mapping[str, Any]) -> JsonValue: ...


def utc_clock() -> datetime:
    return datetime.now(UTC)


class Engine:
    def __init__(
        self,
        version: CompiledVersion,
        *,
        llm: LLM | None = None,
        tools: Tools | None = None,
        secrets: Secrets | None = None,
        clock: Clock = utc_clock,
        tool_timeout_s: float = 15.0,
    ) -> None:
        self.version = version
        self.document = version.document
        self.llm = llm
        self.tools = tools
        self.secrets = secrets
        self.clock = clock
        self.tool_timeout_s = tool_timeout_s
        self.global_routes = tuple(
            Candidate(
                route,
                pointer := f"/settings/global_routes/{index}",
                version.conditions.get(f"{pointer}/when"),
            )
            for index, route in enumerate(self.document.settings.global_routes)
        )

    # --- the three entry points -------------------------------------------------------------

    async def start(
        self, variables: Mapping[str, JsonValue] | None = None
    ) -> tuple[State, list[Event]]:
        """A new call: declared defaults, then `variables` (declared names only) over them."""
        declared = self.document.variables
        unknown = sorted(set(variables or {}) - set(declared))
        if unknown:
            raise ValueError(f"undeclared variables: {', '.join(unknown)}")
        values: dict[str, JsonValue] = {name: spec.default for name, spec in declared.items()}
        values.update(variables or {})
        state = State(version=self.version.id, variables=values, started_at=self.clock())
        turn = Turn(self, state)
        await turn.run_from(self.document.start)
        return state, turn.events

    async def handle_user_turn(
        self, state: State, text: str, *, speech: Speech | None = None
    ) -> list[Event]:
        turn = Turn(self, state, speech)
        if state.ended or state.node_id is None:
            return turn.events
        if self._out_of_time(state):
            turn.finish("timeout", "the call reached settings.max_duration_s")
            return turn.events
        text = text.strip()
        state.remember("user", text)
        node = self.version.node(state.node_id)
        target = self._global_route(state, text)
        if target is None:
            target = await on_user_turn(turn, node, text)
        if target is not None:
            await turn.run_from(target)
        return turn.events

    def end(self, state: State, outcome: Outcome, reason: str | None = None) -> list[Event]:
        """End the call from outside (the caller hung up: `abandoned`; a timer: `timeout`)."""
        turn = Turn(self, state)
        if not state.ended:
            turn.finish(outcome, reason)
        return turn.events

    def check_timeout(self, state: State) -> list[Event]:
        """For a session's timer: end the call if it ran past `max_duration_s`."""
        if state.ended or not self._out_of_time(state):
            return []
        return self.end(state, "timeout", "the call reached settings.max_duration_s")

    # --- helpers -----------------------------------------------------------------------------

    def _out_of_time(self, state: State) -> bool:
        elapsed = (self.clock() - state.started_at).total_seconds()
        return elapsed >= self.document.settings.max_duration_s

    def _global_route(self, state: State, text: str) -> str | None:
        if not self.global_routes or state.pending is not None:
            return None
        threshold = self.document.settings.match_threshold
        match = best_example_match(text, self.global_routes, threshold)
        if match is None or check_route(match, state.variables) is not None:
            return None
        return match.route.to


class Turn:
    """One call of the engine: the state it changes and the events it reports."""

    def __init__(self, engine: Engine, state: State, speech: Speech | None = None) -> None:
        self.engine = engine
        self.version = engine.version
        self.state = state
        self.speech = speech
        self.events: list[Event] = []

    @property
    def values(self) -> dict[str, JsonValue]:
        """Variables as templates see them: unset ones are left out, so `default()` applies."""
        return {name: value for name, value in self.state.variables.items() if value is not None}

    def say(self, text: str, node_id: str, *, spoken: bool = False) -> None:
        """Say a line; `spoken` when its pieces already went to the speech as they came."""
        text = text.strip()
        if text:
            self.events.append(Say(text=text, node_id=node_id))
            self.state.remember("assistant", text)
            if self.speech is not None and not spoken:
                self.speech.say(text)

    def say_template(self, node: Node, field: str) -> str | None:
        """Render and say a node's text field; the error when it cannot be rendered."""
        template = self.version.templates.get(self.version.pointer(node.id, field))
        if template is None:
            return None
        try:
            self.say(template.render(self.values), node.id)
        except TemplateError as exc:
            return f"{field}: {exc.message}"
        return None

    def set(self, name: str, value: JsonValue) -> None:
        self.state.variables[name] = value
        self.events.append(SetVariable(name=name, value=value))

    def issue(self, node_id: str, code: str, message: str) -> None:
        self.events.append(RuntimeIssue(node_id=node_id, code=code, message=message))

    def condition(self, node: Node, field: str, extra: Mapping[str, JsonValue] = {}) -> bool:
        """Evaluate a node's condition; raises ExpressionError for the caller to route."""
        pointer = self.version.pointer(node.id, *field.split("/"))
        condition = self.version.conditions[pointer]
        return condition.evaluate({**self.state.variables, **extra})

    def error_path(self, node: Node, code: str, message: str) -> str | None:
        """Record a runtime failure; the node's `on_error` if it has one, else end `failed`."""
        self.issue(node.id, code, message)
        on_error: str | None = getattr(node, "on_error", None)
        if on_error is not None:
            return on_error
        self.finish("failed", f"{code} at node {node.id}")
        return None

    def finish(self, outcome: Outcome, reason: str | None = None) -> None:
        self.state.outcome = outcome
        self.state.node_id = None
        self.state.pending = None
        self.events.append(End(outcome=outcome, reason=reason))

    async def run_from(self, node_id: str) -> None:
        """Enter `node_id` and keep going through automatic nodes until one waits or ends."""
        target: str | None = node_id
        for _ in range(MAX_STEPS_PER_TURN):
            if target is None or self.state.ended:
                return
            node = self.version.node(target)
            self.state.node_id, self.state.turns, self.state.pending = node.id, 0, None
            self.events.append(EnterNode(id=node.id))
            if self.speech is not None:
                self.speech.entered(node.id)
            target = await enter(self, node)
        self.issue(self.state.node_id or "", "loop", "too many steps without a caller turn")
        self.finish("failed", "loop without a caller turn")
