"""Nodes that never wait for the caller: say, branch, transfer, end."""

from __future__ import annotations

from typing import TYPE_CHECKING

from voxflow.dsl.expressions import ExpressionError
from voxflow.dsl.schema import BranchNode, EndNode, SayNode, TransferNode
from voxflow.engine.events import Transfer

if TYPE_CHECKING:
    from voxflow.engine.interpreter import Turn


def enter_say(turn: Turn, node: SayNode) -> str | None:
    if (error := turn.say_template(node, "text")) is not None:
        return turn.error_path(node, "template_error", error)
    return node.next


def enter_branch(turn: Turn, node: BranchNode) -> str | None:
    for index in range(len(node.branches)):
        try:
            if turn.condition(node, f"branches/{index}/when"):
                return node.branches[index].to
        except ExpressionError as exc:
            return turn.error_path(node, "condition_error", f"branches/{index}: {exc.message}")
    return node.else_


def enter_transfer(turn: Turn, node: TransferNode) -> str | None:
    # A line that fails to render is recorded and skipped: the transfer itself must happen.
    if (error := turn.say_template(node, "text")) is not None:
        turn.issue(node.id, "template_error", error)
    turn.events.append(Transfer(target=node.to, mode=node.mode))
    turn.finish("transferred", f"transferred to {node.to}")
    return None


def enter_end(turn: Turn, node: EndNode) -> str | None:
    if (error := turn.say_template(node, "text")) is not None:
        turn.issue(node.id, "template_error", error)
    turn.finish(node.outcome)
    return None
