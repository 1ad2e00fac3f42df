"""Action nodes: render the arguments, call the tool, keep its result."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from pydantic import JsonValue

from voxflow.dsl.compile import render_args
from voxflow.dsl.schema import ActionNode
from voxflow.dsl.templates import TemplateError
from voxflow.engine.events import ToolCall

if TYPE_CHECKING:
    from voxflow.engine.interpreter import Turn


async def enter_action(turn: Turn, node: ActionNode) -> str | None:
    engine = turn.engine
    try:
        rendered = render_args(
            turn.version.args[turn.version.pointer(node.id, "args")], turn.values
        )
    except TemplateError as exc:
        return turn.error_path(node, "template_error", f"args: {exc.message}")
    args: dict[str, JsonValue] = rendered if isinstance(rendered, dict) else {}
    if engine.tools is None:
        return _failed(turn, node, args, "no tools are available to this call", 0.0)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(engine.tool_timeout_s):
            result = await engine.tools.call(node.tool, args)
    except TimeoutError:
        return _failed(turn, node, args, f"timed out after {engine.tool_timeout_s:g} s", started)
    except Exception as exc:  # a tool's failure is the workflow's business, never a crash
        return _failed(turn, node, args, str(exc) or type(exc).__name__, started)
    duration = (time.perf_counter() - started) * 1000
    turn.events.append(
        ToolCall(node_id=node.id, name=node.tool, args=args, result=result, duration_ms=duration)
    )
    if node.result is not None:
        turn.set(node.result, result)
    return node.next


def _failed(
    turn: Turn, node: ActionNode, args: dict[str, JsonValue], error: str, started: float
) -> str | None:
    duration = (time.perf_counter() - started) * 1000 if started else 0.0
    turn.events.append(
        ToolCall(node_id=node.id, name=node.tool, args=args, error=error, duration_ms=duration)
    )
    return turn.error_path(node, "tool_error", f"{node.tool}: {error}")
