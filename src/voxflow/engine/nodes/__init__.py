"""What each node type does when the call enters it and when the caller speaks in it.

Handlers return the id of the node to go to next, or None: stay and wait for the caller (or,
once `turn.finish` was called, nothing more happens). A transition is data, not a side effect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voxflow.dsl.schema import (
    ActionNode,
    BranchNode,
    CollectNode,
    ConversationNode,
    EndNode,
    Node,
    SayNode,
    TransferNode,
)
from voxflow.engine.nodes import action, collect, conversation, flow

if TYPE_CHECKING:
    from voxflow.engine.interpreter import Turn


async def enter(turn: Turn, node: Node) -> str | None:
    match node:
        case SayNode():
            return flow.enter_say(turn, node)
        case BranchNode():
            return flow.enter_branch(turn, node)
        case TransferNode():
            return flow.enter_transfer(turn, node)
        case EndNode():
            return flow.enter_end(turn, node)
        case ActionNode():
            return await action.enter_action(turn, node)
        case CollectNode():
            return collect.enter_collect(turn, node)
        case ConversationNode():
            return conversation.enter_conversation(turn, node)


async def on_user_turn(turn: Turn, node: Node, text: str) -> str | None:
    match node:
        case CollectNode():
            return await collect.on_answer(turn, node, text)
        case ConversationNode():
            return await conversation.on_utterance(turn, node, text)
        case _:  # only collect and conversation nodes wait for the caller
            return None
