"""Document → compiled version: every CEL condition and Jinja2 text compiled once.

A published version never changes, so the engine compiles it once (the runtime loader caches
the result) and each turn only evaluates. Compiled pieces are kept by the JSON pointer of the
field they came from, so a runtime error names the exact place in the document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from pydantic import JsonValue

from voxflow.dsl.expressions import Condition, ExpressionError, compile_condition
from voxflow.dsl.findings import Finding, json_pointer
from voxflow.dsl.schema import (
    ActionNode,
    BranchNode,
    CollectNode,
    ConversationNode,
    EndNode,
    Node,
    Route,
    SayNode,
    TransferNode,
    WorkflowDocument,
)
from voxflow.dsl.templates import Template, TemplateError, compile_template

# Tool arguments with their templated strings compiled; plain values stay as they are.
ArgsTemplate: TypeAlias = Template | JsonValue | list["ArgsTemplate"] | dict[str, "ArgsTemplate"]


class CompileError(Exception):
    def __init__(self, findings: list[Finding]) -> None:
        super().__init__(f"{len(findings)} problem(s), first: {findings[0].message}")
        self.findings = findings


@dataclass(frozen=True)
class CompiledVersion:
    id: str
    document: WorkflowDocument
    nodes: Mapping[str, Node]
    positions: Mapping[str, int]
    templates: Mapping[str, Template]
    conditions: Mapping[str, Condition]
    args: Mapping[str, ArgsTemplate]
    # Per action (by the pointer of its args): the vault secrets its arguments read.
    secrets: Mapping[str, frozenset[str]]

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def pointer(self, node_id: str, *field: str | int) -> str:
        return json_pointer("nodes", self.positions[node_id], *field)


def compile_version(document: WorkflowDocument, version_id: str) -> CompiledVersion:
    """Compile every condition and template; raise CompileError listing all that fail."""
    compiler = _Compiler()
    compiler.document(document)
    if compiler.findings:
        raise CompileError(compiler.findings)
    return CompiledVersion(
        id=version_id,
        document=document,
        nodes={node.id: node for node in document.nodes},
        positions={node.id: index for index, node in enumerate(document.nodes)},
        templates=compiler.templates,
        conditions=compiler.conditions,
        args=compiler.args,
        secrets={
            pointer: secrets
            for pointer, args in compiler.args.items()
            if (secrets := _secrets_of(args))
        },
    )


def expression_findings(document: WorkflowDocument) -> list[Finding]:
    """Syntax errors of every condition and template, with their position (for the linter)."""
    compiler = _Compiler()
    compiler.document(document)
    return compiler.findings


def is_templated(text: str) -> bool:
    return "{{" in text or "{%" in text


def _secrets_of(args: ArgsTemplate) -> frozenset[str]:
    if isinstance(args, Template):
        return args.secrets
    if isinstance(args, dict):
        return frozenset().union(*(_secrets_of(value) for value in args.values()))
    if isinstance(args, list):
        return frozenset().union(*(_secrets_of(value) for value in args))
    return frozenset()


def render_args(args: ArgsTemplate, values: Mapping[str, JsonValue]) -> JsonValue:
    """Tool arguments for one call; raises TemplateError from any of its templates."""
    if isinstance(args, Template):
        return args.render(values)
    if isinstance(args, dict):
        return {key: render_args(value, values) for key, value in args.items()}
    if isinstance(args, list):
        return [render_args(value, values) for value in args]
    return args


Pointer = tuple[str | int, ...]


class _Compiler:
    def __init__(self) -> None:
        self.templates: dict[str, Template] = {}
        self.conditions: dict[str, Condition] = {}
        self.args: dict[str, ArgsTemplate] = {}
        self.findings: list[Finding] = []

    def document(self, document: WorkflowDocument) -> None:
        self._routes(document.settings.global_routes, ("settings", "global_routes"))
        for index, node in enumerate(document.nodes):
            self._node(node, ("nodes", index))

    def _node(self, node: Node, at: Pointer) -> None:
        match node:
            case SayNode():
                self._template(node.text, (*at, "text"))
            case ConversationNode():
                self._routes(node.routes, (*at, "routes"))
                self._template(node.reprompt, (*at, "reprompt"))
            case CollectNode():
                self._template(node.prompt, (*at, "prompt"))
                self._condition(node.validate_, (*at, "validate"))
                self._template(node.invalid, (*at, "invalid"))
            case BranchNode():
                for index, branch in enumerate(node.branches):
                    self._condition(branch.when, (*at, "branches", index, "when"))
            case ActionNode():
                self.args[json_pointer(*at, "args")] = self._args(node.args, (*at, "args"))
            case TransferNode() | EndNode():
                self._template(node.text, (*at, "text"))

    def _routes(self, routes: list[Route], at: Pointer) -> None:
        for index, route in enumerate(routes):
            self._condition(route.when, (*at, index, "when"))

    def _template(self, source: str | None, at: Pointer) -> Template | None:
        if source is None:
            return None
        try:
            template = compile_template(source)
        except TemplateError as exc:
            where = f" (line {exc.line})" if exc.line else ""
            self._fail("invalid_template", f"template error{where}: {exc.message}", at)
            return None
        self.templates[json_pointer(*at)] = template
        return template

    def _condition(self, source: str | None, at: Pointer) -> None:
        if source is None:
            return
        try:
            self.conditions[json_pointer(*at)] = compile_condition(source)
        except ExpressionError as exc:
            where = f" (line {exc.line}, column {exc.column})" if exc.line else ""
            self._fail("invalid_condition", f"CEL error{where}: {exc.message}", at)

    def _args(self, value: Any, at: Pointer) -> ArgsTemplate:
        if isinstance(value, str) and is_templated(value):
            return self._template(value, at) or value
        if isinstance(value, dict):
            return {key: self._args(item, (*at, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self._args(item, (*at, index)) for index, item in enumerate(value)]
        result: JsonValue = value
        return result

    def _fail(self, code: str, message: str, at: Pointer) -> None:
        self.findings.append(
            Finding(severity="error", code=code, message=message, pointer=json_pointer(*at))
        )
