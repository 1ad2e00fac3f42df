"""Cross-reference checks that a schema alone cannot express: ids, references, declarations.

Findings come out in document order (settings, start, then nodes field by field), so a list of
them reads top to bottom like the document.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from voxflow.dsl.findings import Finding, json_pointer
from voxflow.dsl.schema import (
    ActionNode,
    BranchNode,
    CollectNode,
    ConversationNode,
    Node,
    Route,
    SayNode,
    WorkflowDocument,
)

Pointer = tuple[str | int, ...]


def check_structure(doc: WorkflowDocument) -> list[Finding]:
    """Return error findings for broken ids, references and undeclared variables."""
    return list(_Checker(doc).run())


class _Checker:
    def __init__(self, doc: WorkflowDocument) -> None:
        self.doc = doc
        self.node_ids = {node.id for node in doc.nodes}
        self.variables = set(doc.variables)

    def run(self) -> Iterator[Finding]:
        yield from self._routes(self.doc.settings.global_routes, ("settings", "global_routes"))
        if self.doc.start not in self.node_ids:
            yield _error(
                "start_missing", f"start node {self.doc.start!r} does not exist", ("start",)
            )
        seen: set[str] = set()
        for index, node in enumerate(self.doc.nodes):
            at: Pointer = ("nodes", index)
            if node.id in seen:
                yield _error("duplicate_node_id", f"node id {node.id!r} is used twice", (*at, "id"))
            seen.add(node.id)
            yield from self._node(node, at)

    def _node(self, node: Node, at: Pointer) -> Iterator[Finding]:
        # Checks follow each node type's field order so findings stay in document order.
        match node:
            case SayNode():
                yield from self._ref(node.next, (*at, "next"))
                yield from self._ref(node.on_error, (*at, "on_error"))
            case ConversationNode():
                yield from self._routes(node.routes, (*at, "routes"))
                yield from self._ref(node.fallback, (*at, "fallback"))
                yield from self._ref(node.on_error, (*at, "on_error"))
            case CollectNode():
                yield from self._variable(node.variable, (*at, "variable"))
                yield from self._ref(node.next, (*at, "next"))
                yield from self._ref(node.on_fail, (*at, "on_fail"))
                yield from self._ref(node.on_error, (*at, "on_error"))
            case BranchNode():
                for index, branch in enumerate(node.branches):
                    yield from self._ref(branch.to, (*at, "branches", index, "to"))
                yield from self._ref(node.else_, (*at, "else"))
                yield from self._ref(node.on_error, (*at, "on_error"))
            case ActionNode():
                yield from self._variable(node.result, (*at, "result"))
                yield from self._ref(node.next, (*at, "next"))
                yield from self._ref(node.on_error, (*at, "on_error"))
            case _:
                # transfer and end lead out of the graph: their `to` is a phone target.
                pass

    def _routes(self, routes: Iterable[Route], at: Pointer) -> Iterator[Finding]:
        for index, route in enumerate(routes):
            yield from self._ref(route.to, (*at, index, "to"))
            for position, name in enumerate(route.requires):
                yield from self._variable(name, (*at, index, "requires", position))

    def _ref(self, target: str | None, at: Pointer) -> Iterator[Finding]:
        if target is not None and target not in self.node_ids:
            yield _error("unknown_node", f"no node has the id {target!r}", at)

    def _variable(self, name: str | None, at: Pointer) -> Iterator[Finding]:
        if name is not None and name not in self.variables:
            yield _error(
                "undeclared_variable", f"variable {name!r} is not declared in `variables`", at
            )


def _error(code: str, message: str, at: Pointer) -> Finding:
    return Finding(severity="error", code=code, message=message, pointer=json_pointer(*at))
