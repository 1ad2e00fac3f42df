"""The full lint: each kind of finding, with its code, severity and pointer."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from voxflow.dsl import WorkflowDocument
from voxflow.dsl.lint import has_errors, lint
from voxflow.tools import default_registry

EXAMPLES = Path(__file__).parents[2] / "examples"
LUIGIS: dict[str, Any] = yaml.safe_load((EXAMPLES / "luigis.yaml").read_text())


def luigis() -> dict[str, Any]:
    return copy.deepcopy(LUIGIS)


def findings(document: dict[str, Any], *, tools: bool = True) -> list[tuple[str, str, str]]:
    catalog = default_registry() if tools else None
    found = lint(WorkflowDocument.model_validate(document), catalog)
    return [(f.severity, f.code, f.pointer) for f in found]


def document(*nodes: dict[str, Any], **variables: Any) -> dict[str, Any]:
    return {
        "schema": "voxflow/v1",
        "name": "t",
        "variables": variables,
        "start": nodes[0]["id"],
        "nodes": list(nodes),
    }


def node_index(doc: dict[str, Any], node_id: str) -> int:
    return next(i for i, n in enumerate(doc["nodes"]) if n["id"] == node_id)


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_the_examples_have_no_errors(name: str) -> None:
    found = lint(
        WorkflowDocument.model_validate(yaml.safe_load((EXAMPLES / name).read_text())),
        default_registry(),
    )

    assert not has_errors(found), found


def test_a_node_nothing_leads_to_is_unreachable() -> None:
    doc = luigis()
    doc["nodes"].append({"id": "orphan", "type": "end"})

    assert ("warning", "unreachable", f"/nodes/{len(doc['nodes']) - 1}") in findings(doc)


def test_a_node_that_cannot_reach_an_end_is_a_dead_end() -> None:
    doc = document(
        {"id": "ask", "type": "collect", "variable": "n", "prompt": "n?", "next": "again"},
        {
            "id": "again",
            "type": "conversation",
            "prompt": "p",
            "routes": [{"to": "ask", "intent": "again"}],
            "fallback": "ask",
        },
        n={"type": "integer"},
    )

    found = findings(doc)

    assert ("error", "dead_end", "/nodes/0") in found
    assert ("error", "dead_end", "/nodes/1") in found


def test_a_variable_read_before_any_path_sets_it_is_a_warning() -> None:
    doc = document(
        {"id": "hi", "type": "say", "text": "Hello {{ name }}", "next": "ask"},
        {"id": "ask", "type": "collect", "variable": "name", "prompt": "Name?", "next": "bye"},
        {"id": "bye", "type": "end", "text": "Bye {{ name }}"},
        name={"type": "string"},
    )

    found = findings(doc)

    assert ("warning", "read_before_set", "/nodes/0/text") in found
    assert not any(pointer == "/nodes/2/text" for _, _, pointer in found)


def test_a_variable_with_a_default_counts_as_set() -> None:
    doc = document(
        {"id": "hi", "type": "say", "text": "Hello {{ name }}", "next": "bye"},
        {"id": "bye", "type": "end"},
        name={"type": "string", "default": "there"},
    )

    assert findings(doc) == []


def test_undeclared_variables_in_conditions_and_templates_are_errors() -> None:
    doc = document(
        {"id": "b", "type": "branch", "branches": [{"when": "ghost > 1", "to": "e"}], "else": "e"},
        {"id": "e", "type": "end", "text": "{{ phantom }}"},
    )

    found = findings(doc)

    assert ("error", "undeclared_variable", "/nodes/0/branches/0/when") in found
    assert ("error", "undeclared_variable", "/nodes/1/text") in found


def test_invalid_cel_and_jinja_are_errors_with_their_position() -> None:
    doc = luigis()
    party = node_index(doc, "ask_party")
    doc["nodes"][party]["validate"] = "party_size >= "
    bye = node_index(doc, "bye")
    doc["nodes"][bye]["text"] = "Thanks {{ guest_name "

    found = lint(WorkflowDocument.model_validate(doc), default_registry())
    by_pointer = {f.pointer: f for f in found}

    assert by_pointer[f"/nodes/{party}/validate"].code == "invalid_condition"
    assert "line 1" in by_pointer[f"/nodes/{party}/validate"].message
    assert by_pointer[f"/nodes/{bye}/text"].code == "invalid_template"


def test_an_unknown_tool_and_bad_tool_args_are_errors() -> None:
    doc = document(
        {"id": "a", "type": "action", "tool": "fax.send", "args": {}, "next": "b"},
        {
            "id": "b",
            "type": "action",
            "tool": "http.request",
            "args": {"url": "https://x.example/{{ id }}", "method": "FETCH", "nope": 1},
            "next": "e",
        },
        {"id": "e", "type": "end"},
        id={"type": "integer", "default": 1},
    )

    found = findings(doc)

    assert ("error", "unknown_tool", "/nodes/0/tool") in found
    assert ("error", "invalid_tool_args", "/nodes/1/args/method") in found
    assert ("error", "invalid_tool_args", "/nodes/1/args/nope") in found
    assert not any(p == "/nodes/1/args/url" for _, _, p in found)  # templated: checked later


def test_a_route_with_neither_examples_nor_intent_is_an_error() -> None:
    doc = luigis()
    intent = node_index(doc, "intent")
    doc["nodes"][intent]["routes"].append({"to": "bye"})

    assert ("error", "route_unmatchable", f"/nodes/{intent}/routes/2") in findings(doc)


def test_a_loop_without_a_user_turn_is_an_error() -> None:
    doc = document(
        {"id": "a", "type": "say", "text": "one", "next": "b"},
        {"id": "b", "type": "branch", "branches": [{"when": "true", "to": "e"}], "else": "a"},
        {"id": "e", "type": "end"},
    )

    assert ("error", "loop_without_user_turn", "/nodes/0") in findings(doc)


def test_a_loop_through_a_question_is_fine() -> None:
    doc = document(
        {"id": "ask", "type": "collect", "variable": "n", "prompt": "n?", "next": "check"},
        {
            "id": "check",
            "type": "branch",
            "branches": [{"when": "n > 3", "to": "e"}],
            "else": "ask",
        },
        {"id": "e", "type": "end"},
        n={"type": "integer"},
    )

    assert findings(doc) == []


def test_collecting_an_undeclared_variable_is_an_error() -> None:
    doc = document(
        {"id": "ask", "type": "collect", "variable": "ghost", "prompt": "?", "next": "e"},
        {"id": "e", "type": "end"},
    )

    assert ("error", "undeclared_variable", "/nodes/0/variable") in findings(doc)


def test_warnings_alone_do_not_block() -> None:
    doc = luigis()
    doc["nodes"].append({"id": "orphan", "type": "end"})

    found = lint(WorkflowDocument.model_validate(doc), default_registry())

    assert found
    assert not has_errors(found)
