"""The full check of a workflow before it may be published: structure, then meaning.

Errors block publishing; warnings are shown. On top of `check_structure`:

- invalid_condition / invalid_template: CEL or Jinja2 that does not compile (with position)
- undeclared_variable: a condition or template reads a variable `variables` does not declare
- secret_outside_tool_args / invalid_secret_reference: `secrets` read anywhere but in tool
  arguments, or there other than as `{{ secrets.NAME }}`; reserved_variable: a variable
  declared as `secrets`
- unknown_tool / invalid_tool_args: an action names no registered tool, or its arguments fail
  the tool's schema (templated values are checked once rendered, at run time)
- route_unmatchable: a route with neither `examples` nor `intent`
- loop_without_user_turn: say/branch/action nodes that can cycle without ever asking the caller
- dead_end: no path from the node reaches an `end` or `transfer` node
- unreachable (warning): no path from `start` (or a global route) reaches the node
- read_before_set (warning): a variable read where no path from the start can have set it
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from voxflow.dsl.compile import expression_findings
from voxflow.dsl.expressions import ExpressionError, compile_condition
from voxflow.dsl.findings import Finding, json_pointer
from voxflow.dsl.schema import (
    ActionNode,
    BranchNode,
    CollectNode,
    ConversationNode,
    EndNode,
    Node,
    SayNode,
    TransferNode,
    WorkflowDocument,
)
from voxflow.dsl.structure import check_structure
from voxflow.dsl.templates import SECRETS, TemplateError, compile_template

# Names Jinja2 provides itself; a template reading them reads no workflow variable.
_JINJA_GLOBALS = frozenset({"range", "dict", "lipsum", "cycler", "joiner", "namespace", "loop"})


class ArgProblemLike(Protocol):
    @property
    def pointer(self) -> str: ...

    @property
    def message(self) -> str: ...


class ToolCatalog(Protocol):
    """What the linter needs of a tool registry (`voxflow.tools.ToolRegistry`)."""

    def names(self) -> list[str]: ...

    def check_args(
        self, name: str, args: Mapping[str, Any], *, templated: bool = False
    ) -> Sequence[ArgProblemLike]: ...


def lint(document: WorkflowDocument, tools: ToolCatalog | None = None) -> list[Finding]:
    """Every finding, errors and warnings, in document order within each kind of check."""
    structure = check_structure(document)
    findings = structure + expression_findings(document)
    linter = _Linter(document)
    findings += list(linter.variables_declared())
    findings += list(linter.secret_references())
    if tools is not None:
        findings += list(linter.tools(tools))
    findings += list(linter.unmatchable_routes())
    # The graph checks mean little while references are broken: fix those first.
    if not has_errors(structure):
        findings += list(linter.graph())
    return findings


def has_errors(findings: Sequence[Finding]) -> bool:
    return any(finding.severity == "error" for finding in findings)


Pointer = tuple[str | int, ...]


class _Linter:
    def __init__(self, document: WorkflowDocument) -> None:
        self.document = document
        self.nodes = {node.id: node for node in document.nodes}
        self.positions = {node.id: index for index, node in enumerate(document.nodes)}
        self.declared = set(document.variables)

    # --- variables ---------------------------------------------------------------------------

    def reads(self, node: Node) -> Iterator[tuple[str, Pointer]]:
        """(variable, pointer of the field reading it) for every read in the node."""
        at: Pointer = ("nodes", self.positions[node.id])
        for field, source, is_condition in _expressions(node):
            for name in _variables(source, is_condition):
                yield name, (*at, *field)

    def variables_declared(self) -> Iterator[Finding]:
        global_routes = self.document.settings.global_routes
        for index, route in enumerate(global_routes):
            if route.when is not None:
                for name in _variables(route.when, True):
                    if name not in self.declared:
                        yield _undeclared(name, ("settings", "global_routes", index, "when"))
        for node in self.document.nodes:
            own = node.variable if isinstance(node, CollectNode) else None
            for name, at in self.reads(node):
                if name not in self.declared and name != own:
                    yield _undeclared(name, at)

    def secret_references(self) -> Iterator[Finding]:
        if SECRETS in self.document.variables:
            yield _error(
                "reserved_variable",
                "`secrets` is reserved for {{ secrets.NAME }}; name the variable otherwise",
                ("variables", SECRETS),
            )
        for index, route in enumerate(self.document.settings.global_routes):
            if route.when is not None and SECRETS in _raw_variables(route.when, True):
                yield _secret_outside(("settings", "global_routes", index, "when"))
        for node in self.document.nodes:
            at: Pointer = ("nodes", self.positions[node.id])
            for field, source, is_condition in _expressions(node):
                if SECRETS not in _raw_variables(source, is_condition):
                    continue
                if is_condition or not isinstance(node, ActionNode):
                    yield _secret_outside((*at, *field))
                elif compile_template(source).secrets_misused:
                    yield _error(
                        "invalid_secret_reference",
                        "read a secret by its name: {{ secrets.NAME }}",
                        (*at, *field),
                    )

    # --- tools and routes --------------------------------------------------------------------

    def tools(self, catalog: ToolCatalog) -> Iterator[Finding]:
        known = set(catalog.names())
        for index, node in enumerate(self.document.nodes):
            if not isinstance(node, ActionNode):
                continue
            if node.tool not in known:
                listed = ", ".join(sorted(known)) or "none"
                yield _error(
                    "unknown_tool",
                    f"no tool is named {node.tool!r} (available: {listed})",
                    ("nodes", index, "tool"),
                )
                continue
            for problem in catalog.check_args(node.tool, node.args, templated=True):
                yield Finding(
                    severity="error",
                    code="invalid_tool_args",
                    message=f"{node.tool}: {problem.message}",
                    pointer=json_pointer("nodes", index, "args") + problem.pointer,
                )

    def unmatchable_routes(self) -> Iterator[Finding]:
        for index, node in enumerate(self.document.nodes):
            if isinstance(node, ConversationNode):
                for position, route in enumerate(node.routes):
                    if not route.examples and not route.intent:
                        yield _error(
                            "route_unmatchable",
                            "a route needs examples or an intent, or nothing can choose it",
                            ("nodes", index, "routes", position),
                        )
        for position, route in enumerate(self.document.settings.global_routes):
            if not route.examples and not route.intent:
                yield _error(
                    "route_unmatchable",
                    "a route needs examples or an intent, or nothing can choose it",
                    ("settings", "global_routes", position),
                )

    # --- the graph ---------------------------------------------------------------------------

    def successors(self, node: Node) -> list[str]:
        targets: list[str | None]
        match node:
            case SayNode():
                targets = [node.next, node.on_error]
            case ConversationNode():
                targets = [*(r.to for r in node.routes), node.fallback, node.on_error]
            case CollectNode():
                targets = [node.next, node.on_fail, node.on_error]
            case BranchNode():
                targets = [*(b.to for b in node.branches), node.else_, node.on_error]
            case ActionNode():
                targets = [node.next, node.on_error]
            case TransferNode() | EndNode():
                targets = []
        if _waits(node):
            targets += [route.to for route in self.document.settings.global_routes]
        return [target for target in targets if target is not None and target in self.nodes]

    def graph(self) -> Iterator[Finding]:
        if self.document.start not in self.nodes:
            return
        edges = {node.id: self.successors(node) for node in self.document.nodes}
        reachable = _reach([self.document.start], edges)
        for node in self.document.nodes:
            if node.id not in reachable:
                yield _warning(
                    "unreachable",
                    f"no path from the start reaches node {node.id!r}",
                    self._at(node),
                )
        yield from self._loops(edges)
        yield from self._dead_ends(edges, reachable)
        yield from self._reads_before_set(edges)

    def _loops(self, edges: dict[str, list[str]]) -> Iterator[Finding]:
        automatic = {
            node_id: [t for t in targets if not _waits(self.nodes[t])]
            for node_id, targets in edges.items()
            if not _waits(self.nodes[node_id])
        }
        for component in _cycles(automatic):
            first = min(component, key=self.positions.__getitem__)
            path = " → ".join(sorted(component, key=self.positions.__getitem__))
            yield _error(
                "loop_without_user_turn",
                f"these nodes can repeat forever without asking the caller: {path}",
                self._at(self.nodes[first]),
            )

    def _dead_ends(self, edges: dict[str, list[str]], reachable: set[str]) -> Iterator[Finding]:
        reverse: dict[str, list[str]] = {node_id: [] for node_id in edges}
        for source, targets in edges.items():
            for target in targets:
                reverse[target].append(source)
        terminals = [n.id for n in self.document.nodes if isinstance(n, TransferNode | EndNode)]
        finishing = _reach(terminals, reverse)
        for node in self.document.nodes:
            if node.id in reachable and node.id not in finishing:
                yield _error(
                    "dead_end",
                    f"no path from node {node.id!r} reaches an end or transfer node",
                    self._at(node),
                )

    def _reads_before_set(self, edges: dict[str, list[str]]) -> Iterator[Finding]:
        """May-be-set analysis: a variable no path from the start can have set is a warning."""
        initially = {
            name for name, spec in self.document.variables.items() if spec.default is not None
        }
        known: dict[str, set[str]] = {self.document.start: set(initially)}
        pending = [self.document.start]
        while pending:
            node_id = pending.pop()
            out = known[node_id] | _sets(self.nodes[node_id])
            for target in edges[node_id]:
                before = known.setdefault(target, set())
                if not out <= before:
                    before |= out
                    pending.append(target)
        for node in self.document.nodes:
            if node.id not in known:
                continue  # unreachable: reported already
            own = node.variable if isinstance(node, CollectNode) else None
            for name, at in self.reads(node):
                if name in self.declared and name != own and name not in known[node.id]:
                    yield _warning(
                        "read_before_set",
                        f"{name!r} is read here, but no path from the start sets it first "
                        "(unless the session provides it)",
                        at,
                    )

    def _at(self, node: Node) -> Pointer:
        return ("nodes", self.positions[node.id])


def _waits(node: Node) -> bool:
    return isinstance(node, CollectNode | ConversationNode)


def _sets(node: Node) -> set[str]:
    if isinstance(node, CollectNode):
        return {node.variable}
    if isinstance(node, ActionNode) and node.result is not None:
        return {node.result}
    return set()


def _expressions(node: Node) -> Iterator[tuple[Pointer, str, bool]]:
    """(field pointer within the node, source, is it CEL) for every expression of the node."""
    match node:
        case SayNode():
            yield ("text",), node.text, False
        case ConversationNode():
            for index, route in enumerate(node.routes):
                if route.when is not None:
                    yield ("routes", index, "when"), route.when, True
            if node.reprompt is not None:
                yield ("reprompt",), node.reprompt, False
        case CollectNode():
            yield ("prompt",), node.prompt, False
            if node.validate_ is not None:
                yield ("validate",), node.validate_, True
            if node.invalid is not None:
                yield ("invalid",), node.invalid, False
        case BranchNode():
            for index, branch in enumerate(node.branches):
                yield ("branches", index, "when"), branch.when, True
        case ActionNode():
            yield from _arg_templates(node.args, ("args",))
        case TransferNode() | EndNode():
            if node.text is not None:
                yield ("text",), node.text, False


def _arg_templates(value: Any, at: Pointer) -> Iterator[tuple[Pointer, str, bool]]:
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        yield at, value, False
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _arg_templates(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _arg_templates(item, (*at, index))


def _variables(source: str, is_condition: bool) -> frozenset[str]:
    """Variables an expression reads (`secrets` is not one: it has its own check)."""
    return _raw_variables(source, is_condition) - {SECRETS}


def _raw_variables(source: str, is_condition: bool) -> frozenset[str]:
    """Names an expression reads; nothing for one that does not compile (reported apart)."""
    try:
        if is_condition:
            return compile_condition(source).variables
        return compile_template(source).variables - _JINJA_GLOBALS
    except (ExpressionError, TemplateError):
        return frozenset()


def _secret_outside(at: Pointer) -> Finding:
    return _error(
        "secret_outside_tool_args",
        "secrets can only be read in an action's tool arguments, as {{ secrets.NAME }}",
        at,
    )


def _reach(starts: Sequence[str], edges: Mapping[str, Sequence[str]]) -> set[str]:
    seen, stack = set(starts), list(starts)
    while stack:
        for target in edges.get(stack.pop(), ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def _cycles(edges: Mapping[str, Sequence[str]]) -> list[set[str]]:
    """Strongly connected components that contain a cycle (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[set[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = edges.get(node, ())
            if child < len(targets):
                work.append((node, child + 1))
                target = targets[child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            for target in targets:
                if target in on_stack:
                    low[node] = min(low[node], low[target])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges.get(node, ()):
                    found.append(component)
    return found


def _undeclared(name: str, at: Pointer) -> Finding:
    return _error("undeclared_variable", f"variable {name!r} is not declared in `variables`", at)


def _error(code: str, message: str, at: Pointer) -> Finding:
    return Finding(severity="error", code=code, message=message, pointer=json_pointer(*at))


def _warning(code: str, message: str, at: Pointer) -> Finding:
    return Finding(severity="warning", code=code, message=message, pointer=json_pointer(*at))
