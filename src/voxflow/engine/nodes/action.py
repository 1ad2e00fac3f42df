"""Action nodes: render the arguments, call the tool, keep its result."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import JsonValue

from voxflow.dsl.compile import render_args
from voxflow.dsl.schema import ActionNode
from voxflow.dsl.templates import SECRETS, TemplateError
from voxflow.engine.events import ToolCall
from voxflow.engine.secrets import SecretUnavailable, mask_values, masked

if TYPE_CHECKING:
    from voxflow.engine.interpreter import Turn


async def enter_action(turn: Turn, node: ActionNode) -> str | None:
    engine = turn.engine
    pointer = turn.version.pointer(node.id, "args")
    template = turn.version.args[pointer]
    needed = turn.version.secrets.get(pointer, frozenset())
    try:
        shown = _as_args(render_args(template, _with_secrets(turn, masked(needed))))
    except TemplateError as exc:
        return turn.error_path(node, "template_error", f"args: {exc.message}")
    if engine.tools is None:
        return _failed(turn, node, shown, "no tools are available to this call", 0.0)
    started = time.perf_counter()
    secrets: dict[str, str] = {}
    try:
        async with asyncio.timeout(engine.tool_timeout_s):
            # Secrets are read only now, for this call, and rendered into the arguments the
            # tool gets; everything recorded keeps `shown`.
            args = shown
            if needed:
                if engine.secrets is None:
                    raise SecretUnavailable("secrets are not available to this call")
                secrets = dict(await engine.secrets.resolve(needed))
                args = _as_args(render_args(template, _with_secrets(turn, secrets)))
            result = await engine.tools.call(node.tool, args)
    except TimeoutError:
        message = f"timed out after {engine.tool_timeout_s:g} s"
        return _failed(turn, node, shown, message, started)
    except (SecretUnavailable, TemplateError) as exc:
        return _failed(turn, node, shown, exc.message, started)
    except Exception as exc:  # a tool's failure is the workflow's business, never a crash
        message = mask_values(str(exc) or type(exc).__name__, secrets)
        return _failed(turn, node, shown, message, started)
    duration = (time.perf_counter() - started) * 1000
    turn.events.append(
        ToolCall(node_id=node.id, name=node.tool, args=shown, result=result, duration_ms=duration)
    )
    if node.result is not None:
        turn.set(node.result, result)
    return node.next


def _with_secrets(turn: Turn, secrets: Mapping[str, str]) -> dict[str, JsonValue]:
    values: dict[str, JsonValue] = dict(secrets)
    return {**turn.values, SECRETS: values}


def _as_args(rendered: JsonValue) -> dict[str, JsonValue]:
    return rendered if isinstance(rendered, dict) else {}


def _failed(
    turn: Turn, node: ActionNode, args: dict[str, JsonValue], error: str, started: float
) -> str | None:
    duration = (time.perf_counter() - started) * 1000 if started else 0.0
    turn.events.append(
        ToolCall(node_id=node.id, name=node.tool, args=args, error=error, duration_ms=duration)
    )
    return turn.error_path(node, "tool_error", f"{node.tool}: {error}")
