"""Whether the caller's words so far already give what the waiting node needs.

A voice call uses it to end the caller's turn at a short pause instead of waiting out the
full silence (voice.offline's `early_end` hook): when the interim transcript already fills
the collect node the call waits at, waiting longer only delays the reply.

It answers the way the collect node would, without the model: the type's deterministic parser
(engine.slots) reads a value and the node's `validate` condition, if any, holds for it. While a
value awaits confirmation, a clear yes or no completes the turn. Free text (`string` and
`object` variables) is never complete: any prefix of a name parses, so a pause inside "my name
is ... Ana" would cut the caller off. Other nodes are never complete either (the agent cannot
tell when a conversation answer is over). Pure: the clock arrives as `now`.
"""

from __future__ import annotations

from datetime import datetime

from voxflow.dsl.compile import CompiledVersion
from voxflow.dsl.expressions import ExpressionError
from voxflow.dsl.schema import CollectNode
from voxflow.engine.slots import SlotContext, parse_slot
from voxflow.engine.state import State

FREE_TEXT_TYPES = frozenset({"string", "object"})


def answer_completes(version: CompiledVersion, state: State, text: str, *, now: datetime) -> bool:
    """True when `text` alone answers the collect node `state` waits at (see module)."""
    if state.ended or state.node_id is None or state.node_id not in version.nodes:
        return False
    node = version.node(state.node_id)
    if not isinstance(node, CollectNode):
        return False
    spec = version.document.variables[node.variable]
    settings = version.document.settings
    context = SlotContext(
        now=now, timezone=settings.timezone, region=settings.region, choices=spec.choices
    )
    if state.pending is not None:
        return parse_slot("boolean", text, context) is not None
    if spec.type in FREE_TEXT_TYPES:
        return False
    parsed = parse_slot(spec.type, text, context)
    if parsed is None:
        return False
    if node.validate_ is None:
        return True
    condition = version.conditions[version.pointer(node.id, "validate")]
    try:
        return condition.evaluate({**state.variables, node.variable: parsed.value})
    except ExpressionError:
        # The full turn reports the error; the early end only declines.
        return False
