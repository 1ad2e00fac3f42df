"""Collect nodes: ask for one typed variable, parse the answer, validate, maybe confirm.

Deterministic parsing comes first (`engine.slots`); the model is asked to extract the value
only when parsing failed and a model is configured. `retries: n` re-asks up to n times after
an unusable or invalid answer, then the call goes to `on_fail` (or ends `failed`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import JsonValue

from voxflow.dsl.expressions import ExpressionError
from voxflow.dsl.schema import CollectNode, VariableSpec
from voxflow.engine.slots import SlotContext, format_slot, parse_slot
from voxflow.providers.llm.base import ChatMessage, FunctionSpec, LLMError

if TYPE_CHECKING:
    from voxflow.engine.interpreter import Turn

NOT_UNDERSTOOD = "Sorry, I didn't catch that."
YES_OR_NO = "Sorry, is that a yes or a no?"


def enter_collect(turn: Turn, node: CollectNode) -> str | None:
    if (error := turn.say_template(node, "prompt")) is not None:
        return turn.error_path(node, "template_error", error)
    return None


async def on_answer(turn: Turn, node: CollectNode, text: str) -> str | None:
    spec = turn.engine.document.variables[node.variable]
    context = slot_context(turn, spec)
    if turn.state.pending is not None:
        return _confirmation(turn, node, text, context)
    kind = _slot_kind(spec)
    parsed = parse_slot(kind, text, context)
    value: JsonValue = parsed.value if parsed is not None else None
    if value is None and turn.engine.llm is not None:
        try:
            value = await _extract(turn, node, spec, text, context)
        except LLMError as exc:
            # The parser already had its go: without the model the answer is just unusable.
            turn.issue(node.id, "llm_error", str(exc))
    if value is None:
        return _ask_again(turn, node, invalid=False)
    if node.validate_ is not None:
        try:
            valid = turn.condition(node, "validate", {node.variable: value})
        except ExpressionError as exc:
            return turn.error_path(node, "condition_error", f"validate: {exc.message}")
        if not valid:
            return _ask_again(turn, node, invalid=True)
    if node.confirm:
        turn.state.pending = value
        turn.say(f"{format_slot(kind, _scalar(value), context)}, is that right?", node.id)
        return None
    turn.set(node.variable, value)
    return node.next


def slot_context(turn: Turn, spec: VariableSpec) -> SlotContext:
    settings = turn.engine.document.settings
    return SlotContext(
        now=turn.engine.clock(),
        timezone=settings.timezone,
        region=settings.region,
        choices=spec.choices,
    )


def _slot_kind(spec: VariableSpec) -> str:
    # An `object` variable is filled by tools; asked for, it keeps the caller's words.
    return "string" if spec.type == "object" else spec.type


def _scalar(value: JsonValue) -> int | float | bool | str:
    return value if isinstance(value, int | float | bool | str) else str(value)


def _confirmation(turn: Turn, node: CollectNode, text: str, context: SlotContext) -> str | None:
    answer = parse_slot("boolean", text, context)
    if answer is None:
        turn.state.turns += 1
        if turn.state.turns > node.retries:
            return _give_up(turn, node)
        turn.say(YES_OR_NO, node.id)
        return None
    value, turn.state.pending = turn.state.pending, None
    if answer.value is True:
        turn.set(node.variable, value)
        return node.next
    return _ask_again(turn, node, invalid=False, apology=False)


def _ask_again(turn: Turn, node: CollectNode, *, invalid: bool, apology: bool = True) -> str | None:
    turn.state.turns += 1
    if turn.state.turns > node.retries:
        return _give_up(turn, node)
    if invalid and node.invalid is not None:
        if (error := turn.say_template(node, "invalid")) is not None:
            return turn.error_path(node, "template_error", error)
        return None
    if apology:
        turn.say(NOT_UNDERSTOOD, node.id)
    if (error := turn.say_template(node, "prompt")) is not None:
        return turn.error_path(node, "template_error", error)
    return None


def _give_up(turn: Turn, node: CollectNode) -> str | None:
    if node.on_fail is not None:
        return node.on_fail
    turn.finish("failed", f"no usable answer for {node.variable}")
    return None


_JSON_TYPES: dict[str, dict[str, Any]] = {
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "description": "ISO date, YYYY-MM-DD"},
    "time": {"type": "string", "description": "24-hour time, HH:MM"},
}


async def _extract(
    turn: Turn, node: CollectNode, spec: VariableSpec, text: str, context: SlotContext
) -> JsonValue:
    """Ask the model for the value; its answer is parsed like the caller's own words."""
    assert turn.engine.llm is not None
    kind = _slot_kind(spec)
    schema = dict(_JSON_TYPES.get(kind, {"type": "string"}))
    if spec.choices:
        schema = {"type": "string", "enum": sorted(spec.choices)}
    function = FunctionSpec(
        name=f"set_{node.variable}",
        description=f"Record the caller's answer for {node.variable} ({kind}).",
        parameters={"type": "object", "properties": {"value": schema}, "required": ["value"]},
    )
    today = context.today.isoformat()
    instructions = (
        f"The caller was asked: {node.prompt!r}. Today is {today}. If their answer gives the "
        f"{kind} asked for, call {function.name}; otherwise reply with an empty message."
    )
    response = await turn.engine.llm.complete(
        [ChatMessage(role="system", content=instructions), ChatMessage(role="user", content=text)],
        functions=[function],
    )
    for call in response.tool_calls:
        if call.name == function.name and "value" in call.arguments:
            reparsed = parse_slot(kind, str(call.arguments["value"]), context)
            if reparsed is not None:
                return reparsed.value
    return None
