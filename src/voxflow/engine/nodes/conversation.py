"""Conversation nodes: talk until the caller's wish matches a route.

Offline (no model), the utterance is matched against each route's examples; no match
re-prompts, and `max_turns` turns without a match lead to `fallback`. With a model, the routes
are functions it may call: a call is honoured only if the route's `when` holds and its
`requires` are set; otherwise the model is told what is missing and the call stays here. The
model can fill a missing required variable through a `set_<name>` function.

A model that fails (its client already retried once) or answers with nothing a caller can hear
(only whitespace, or a function call written out as text) does not freeze the call: the turn is
recorded as an issue and counts as one without a way out (an apology or the reprompt, then
`fallback` after `max_turns`), unless the node has an `on_error` to go to. With a `Speech` (voice
calls) the model's text is streamed to it as it arrives, once it is clearly speech.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import JsonValue

from voxflow.dsl.schema import ConversationNode
from voxflow.engine.nodes.collect import slot_context
from voxflow.engine.routing import (
    Candidate,
    best_example_match,
    check_route,
    route_functions,
)
from voxflow.engine.slots import parse_slot
from voxflow.engine.speech import Speech
from voxflow.providers.llm.base import (
    ChatMessage,
    FunctionSpec,
    LLMError,
    LLMResponse,
    ToolCallRequest,
)

if TYPE_CHECKING:
    from voxflow.engine.interpreter import Turn

REPROMPT = "Sorry, I didn't get that. Could you say it another way?"
MODEL_FAILED = "Sorry, I'm having trouble understanding right now. Could you say that again?"
# Model calls in one caller turn: a route refused, a variable filled, then the answer.
MAX_MODEL_ROUNDS = 3


def enter_conversation(turn: Turn, node: ConversationNode) -> str | None:
    # The line before the node asked the question; the node listens.
    return None


async def on_utterance(turn: Turn, node: ConversationNode, text: str) -> str | None:
    candidates = _candidates(turn, node)
    if turn.engine.llm is None:
        threshold = turn.engine.document.settings.match_threshold
        match = best_example_match(text, candidates, threshold)
        if match is not None and check_route(match, turn.state.variables) is None:
            return match.route.to
        return _no_way_out(turn, node, None)
    try:
        return await _ask_model(turn, node, candidates)
    except LLMError as exc:
        turn.issue(node.id, "llm_error", str(exc))
        if node.on_error is not None:
            return node.on_error
        return _no_way_out(turn, node, MODEL_FAILED)


def _candidates(turn: Turn, node: ConversationNode) -> list[Candidate]:
    version = turn.version
    routes = [
        Candidate(
            route,
            pointer := version.pointer(node.id, "routes", index),
            version.conditions.get(f"{pointer}/when"),
        )
        for index, route in enumerate(node.routes)
    ]
    return routes


def _no_way_out(turn: Turn, node: ConversationNode, reply: str | None) -> str | None:
    """A turn that did not leave the node: `reply` is said ("" when it was already spoken)."""
    turn.state.turns += 1
    if turn.state.turns >= node.max_turns:
        if node.fallback is not None:
            return node.fallback
        turn.finish("failed", f"no route out of {node.id} within {node.max_turns} turns")
        return None
    if reply is not None:
        turn.say(reply, node.id)
    elif node.reprompt is None:
        turn.say(REPROMPT, node.id)
    elif (error := turn.say_template(node, "reprompt")) is not None:
        turn.issue(node.id, "template_error", error)
        turn.say(REPROMPT, node.id)
    return None


async def _ask_model(turn: Turn, node: ConversationNode, candidates: list[Candidate]) -> str | None:
    assert turn.engine.llm is not None
    routes = route_functions([*candidates, *turn.engine.global_routes])
    messages = [ChatMessage(role="system", content=_instructions(turn, node))]
    messages += [ChatMessage(role=item.role, content=item.text) for item in turn.state.history]
    for _ in range(MAX_MODEL_ROUNDS):
        setters = _setters(turn, candidates)
        functions = [_route_spec(name, c) for name, c in routes.items()] + list(setters.values())
        response, spoken = await _model_reply(turn, node, messages, functions)
        names = [function.name for function in functions]
        if spoken:  # the caller heard it, whatever comes next
            turn.say(response.text, node.id, spoken=True)
        if not response.tool_calls:
            if spoken:
                return _no_way_out(turn, node, "")
            if not _is_speech(response.text, names):
                turn.issue(node.id, "llm_unusable", f"the model answered {response.text[:80]!r}")
                return _no_way_out(turn, node, None)
            return _no_way_out(turn, node, response.text)
        call = response.tool_calls[0]
        if call.name in routes:
            blocked = check_route(routes[call.name], turn.state.variables)
            if blocked is None:
                if not spoken and _is_speech(response.text, names):
                    turn.say(response.text, node.id)
                return routes[call.name].route.to
            answer = blocked.explain()
        elif call.name in setters:
            answer = _fill(turn, node, call)
        else:
            answer = f"There is no function {call.name!r}."
        messages += [
            ChatMessage(role="assistant", content=response.text or None, tool_calls=(call,)),
            ChatMessage(role="tool", content=answer, tool_call_id=call.id),
        ]
    return _no_way_out(turn, node, None)


async def _model_reply(
    turn: Turn, node: ConversationNode, messages: list[ChatMessage], functions: list[FunctionSpec]
) -> tuple[LLMResponse, bool]:
    """The model's answer, and whether its text already went to the speech piece by piece."""
    assert turn.engine.llm is not None
    if turn.speech is None:
        return await turn.engine.llm.complete(messages, functions=functions), False
    line = _StreamedLine(turn.speech, [function.name for function in functions])
    text: list[str] = []
    calls: tuple[ToolCallRequest, ...] = ()
    stream = turn.engine.llm.stream(messages, functions=functions)
    try:
        async for chunk in stream:
            text.append(chunk.text)
            line.feed(chunk.text)
            if chunk.done:
                calls = chunk.tool_calls
    except LLMError:
        if line.opened:  # what the caller heard is on record
            turn.say("".join(text), node.id, spoken=True)
        raise
    finally:
        line.close()
        await stream.aclose()
    return LLMResponse(text="".join(text), tool_calls=calls), line.opened


# What a model writes when it puts a function call in its text instead of calling it.
_CALL_AS_TEXT = re.compile(r"^\s*(?:[{\[<`]|functions\.|([A-Za-z_][\w-]*)\s*\()")


def _is_speech(text: str, function_names: Sequence[str]) -> bool:
    """Whether a model's text is something to say: not blank, not a function call as text."""
    if not text.strip():
        return False
    match = _CALL_AS_TEXT.match(text)
    return match is None or (match.group(1) is not None and match.group(1) not in function_names)


class _StreamedLine:
    """Hands a model's text to the speech as it arrives, once it is clearly speech.

    The first word is held back until it shows the text is neither blank nor a function call
    written out; after that every piece goes on at once.
    """

    def __init__(self, speech: Speech, function_names: Sequence[str]) -> None:
        self.speech = speech
        self.function_names = function_names
        self.held = ""
        self.opened = False
        self.refused = False

    def feed(self, piece: str) -> None:
        if self.refused or not piece:
            return
        if self.opened:
            self.speech.say_partial(piece)
            return
        self.held += piece
        start = self.held.lstrip()
        if not start:
            return
        if not _is_speech(self.held, self.function_names):
            self.refused = True
            return
        # A word (or 24 characters) tells a name followed by "(" from the start of a sentence.
        if re.search(r"[\s(.,!?]", start) is None and len(start) < 24:
            return
        self.opened = True
        self.speech.say_partial(start)

    def close(self) -> None:
        if not self.opened and not self.refused and _is_speech(self.held, self.function_names):
            self.opened = True
            self.speech.say_partial(self.held.lstrip())
        if self.opened:
            self.speech.end_partial()


def _instructions(turn: Turn, node: ConversationNode) -> str:
    document = turn.engine.document
    known = ", ".join(
        f"{name}={value!r}" for name, value in turn.state.variables.items() if value is not None
    )
    return "\n".join(
        part
        for part in (
            "You are a voice agent on a phone call. Answer in one or two short spoken sentences.",
            document.description or "",
            f"Your task now: {node.prompt}",
            f"Known so far: {known}." if known else "",
            "When what the caller wants matches a function, call it instead of answering.",
        )
        if part
    )


def _route_spec(name: str, candidate: Candidate) -> FunctionSpec:
    route = candidate.route
    description = f"Take this route: {route.intent or route.to}."
    if route.examples:
        description += " The caller says things like: " + "; ".join(route.examples[:5])
    return FunctionSpec(
        name=name, description=description, parameters={"type": "object", "properties": {}}
    )


def _setters(turn: Turn, candidates: list[Candidate]) -> dict[str, FunctionSpec]:
    """`set_<name>` for each variable a route here requires and the call does not know yet."""
    missing = {
        name
        for candidate in candidates
        for name in candidate.route.requires
        if turn.state.variables.get(name) is None
    }
    variables = turn.engine.document.variables
    return {
        f"set_{name}": FunctionSpec(
            name=f"set_{name}",
            description=f"Record {name} ({variables[name].type}) once the caller has said it.",
            parameters={
                "type": "object",
                "properties": {"value": {"type": "string"}},
                "required": ["value"],
            },
        )
        for name in sorted(missing)
        if name in variables
    }


def _fill(turn: Turn, node: ConversationNode, call: ToolCallRequest) -> str:
    name = call.name.removeprefix("set_")
    spec = turn.engine.document.variables[name]
    kind = "string" if spec.type == "object" else spec.type
    parsed = parse_slot(kind, str(call.arguments.get("value", "")), slot_context(turn, spec))
    if parsed is None:
        return f"That is not a valid {kind}; ask the caller again."
    value: JsonValue = parsed.value
    turn.set(name, value)
    return f"Saved {name}."
