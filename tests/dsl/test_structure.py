"""Cross-references: node ids, targets and variable declarations."""

import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from voxflow.dsl import (
    WorkflowDocument,
    check_structure,
    dump_canonical,
    load_document,
    parse_document,
)
from voxflow.dsl.schema import IDENTIFIER_PATTERN, NODE_ID_PATTERN

LUIGIS = Path(__file__).parents[2] / "examples" / "luigis.yaml"


def luigis() -> dict[str, Any]:
    return yaml.safe_load(LUIGIS.read_text())


def findings(data: dict[str, Any]) -> list[tuple[str, str]]:
    doc = WorkflowDocument.model_validate(data)
    return [(f.code, f.pointer) for f in check_structure(doc)]


def with_node(data: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    data["nodes"].append(node)
    return data


class TestCheckStructure:
    def test_luigis_example_is_sound(self) -> None:
        assert check_structure(load_document(LUIGIS.read_text(), "application/yaml")) == []

    def test_start_must_name_a_node(self) -> None:
        data = luigis() | {"start": "hello"}

        assert findings(data) == [("start_missing", "/start")]

    def test_second_use_of_an_id_is_reported(self) -> None:
        data = with_node(luigis(), {"id": "greet", "type": "end"})

        assert findings(data) == [("duplicate_node_id", "/nodes/10/id")]

    def test_every_kind_of_target_is_checked(self) -> None:
        data = luigis()
        data["settings"]["global_routes"] = [{"to": "bye"}, {"to": "operator"}]
        nodes = data["nodes"]
        nodes[0]["next"] = "nowhere"
        nodes[1]["routes"][1]["to"] = "opening_hours"
        nodes[1]["fallback"] = "humans"
        nodes[2]["next"] = "sizecheck"
        nodes[2]["on_fail"] = "humans"
        nodes[3]["branches"][0]["to"] = "larger"
        nodes[3]["else"] = "askday"
        with_node(
            data, {"id": "save", "type": "action", "tool": "t", "next": "by", "on_error": "x"}
        )

        assert findings(data) == [
            ("unknown_node", "/settings/global_routes/1/to"),
            ("unknown_node", "/nodes/0/next"),
            ("unknown_node", "/nodes/1/routes/1/to"),
            ("unknown_node", "/nodes/1/fallback"),
            ("unknown_node", "/nodes/2/next"),
            ("unknown_node", "/nodes/2/on_fail"),
            ("unknown_node", "/nodes/3/branches/0/to"),
            ("unknown_node", "/nodes/3/else"),
            ("unknown_node", "/nodes/10/next"),
            ("unknown_node", "/nodes/10/on_error"),
        ]

    def test_transfer_target_is_not_a_node(self) -> None:
        data = luigis()

        assert data["nodes"][7]["to"].startswith("sip:")
        assert findings(data) == []

    def test_variables_must_be_declared(self) -> None:
        data = luigis()
        data["settings"]["global_routes"] = [{"to": "human", "requires": ["caller_id"]}]
        data["nodes"][1]["routes"][0]["requires"] = ["party_size", "partysize"]
        data["nodes"][4]["variable"] = "date"
        with_node(
            data, {"id": "save", "type": "action", "tool": "t", "result": "booking", "next": "bye"}
        )

        assert findings(data) == [
            ("undeclared_variable", "/settings/global_routes/0/requires/0"),
            ("undeclared_variable", "/nodes/1/routes/0/requires/1"),
            ("undeclared_variable", "/nodes/4/variable"),
            ("undeclared_variable", "/nodes/10/result"),
        ]

    def test_declared_result_variable_is_fine(self) -> None:
        data = luigis()
        data["variables"]["booking"] = {"type": "object"}
        with_node(
            data, {"id": "save", "type": "action", "tool": "t", "result": "booking", "next": "bye"}
        )

        assert findings(data) == []

    def test_findings_follow_document_order(self) -> None:
        data = luigis() | {"start": "nope"}
        data["settings"]["global_routes"] = [{"to": "gone"}]
        # Replacing `bye` also strands the two nodes that led to it.
        data["nodes"][9] = {"id": "greet", "type": "say", "text": "hi", "next": "gone"}

        assert findings(data) == [
            ("unknown_node", "/settings/global_routes/0/to"),
            ("start_missing", "/start"),
            ("unknown_node", "/nodes/5/next"),
            ("unknown_node", "/nodes/6/next"),
            ("duplicate_node_id", "/nodes/9/id"),
            ("unknown_node", "/nodes/9/next"),
        ]

    def test_every_finding_is_an_error_with_a_message(self) -> None:
        doc = WorkflowDocument.model_validate(luigis() | {"start": "nope"})

        [finding] = check_structure(doc)

        assert finding.severity == "error"
        assert "'nope'" in finding.message


# --- property tests -------------------------------------------------------------------------

node_ids = st.from_regex(NODE_ID_PATTERN, fullmatch=True)
identifiers = st.from_regex(IDENTIFIER_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 30)
short_text = st.text(max_size=40)
json_leaves = st.none() | st.booleans() | st.integers() | short_text
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(short_text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def variable_specs(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["string", "integer", "date", "object", "enum"]))
    spec: dict[str, Any] = {"type": kind, "default": draw(json_values)}
    if kind == "enum":
        spec["choices"] = draw(st.dictionaries(short_text, st.lists(short_text), min_size=1))
    return spec


@st.composite
def nodes(draw: st.DrawFn, node_id: str, ids: list[str], names: list[str]) -> dict[str, Any]:
    target = st.sampled_from(ids)
    maybe_target = st.none() | target
    routes = st.lists(
        st.fixed_dictionaries(
            {"to": target, "examples": st.lists(short_text, max_size=2)},
            optional={"requires": st.lists(st.sampled_from(names), max_size=2)},
        ),
        min_size=1,
        max_size=3,
    )
    by_type = {
        "say": {"text": short_text, "next": target},
        "conversation": {"prompt": short_text, "routes": routes, "fallback": maybe_target},
        "collect": {
            "variable": st.sampled_from(names),
            "prompt": short_text,
            "retries": st.integers(0, 10),
            "next": target,
            "on_fail": maybe_target,
        },
        "branch": {
            "branches": st.lists(
                st.fixed_dictionaries({"when": short_text, "to": target}), min_size=1, max_size=3
            ),
            "else": target,
        },
        "action": {
            "tool": st.just("http.request"),
            "args": st.dictionaries(short_text, json_values, max_size=3),
            "result": st.none() | st.sampled_from(names),
            "next": target,
            "on_error": maybe_target,
        },
        "transfer": {
            "to": st.just("sip:desk@example.com"),
            "mode": st.sampled_from(["warm", "cold"]),
        },
        "end": {
            "text": st.none() | short_text,
            "outcome": st.sampled_from(["completed", "failed"]),
        },
    }
    kind = draw(st.sampled_from(sorted(by_type)))
    fields = draw(st.fixed_dictionaries(by_type[kind]))
    return {"id": node_id, "type": kind, "title": draw(st.none() | short_text), **fields}


@st.composite
def documents(draw: st.DrawFn) -> WorkflowDocument:
    ids = draw(st.lists(node_ids, min_size=1, max_size=6, unique=True))
    variables = draw(st.dictionaries(identifiers, variable_specs(), min_size=1, max_size=4))
    names = sorted(variables)
    data = {
        "schema": "voxflow/v1",
        "name": draw(st.text(min_size=1, max_size=20)),
        "description": draw(st.none() | short_text),
        "settings": {
            "max_duration_s": draw(st.integers(1, 86400)),
            "interruptions": draw(st.booleans()),
            "global_routes": [{"to": draw(st.sampled_from(ids)), "intent": "human"}],
        },
        "variables": variables,
        "start": draw(st.sampled_from(ids)),
        "nodes": [draw(nodes(node_id, ids, names)) for node_id in ids],
    }
    return WorkflowDocument.model_validate(data)


@settings(max_examples=150, deadline=None)
@given(documents())
def test_documents_referencing_only_existing_ids_are_sound_and_round_trip(
    doc: WorkflowDocument,
) -> None:
    again = parse_document(json.loads(dump_canonical(doc)))

    assert again == doc
    assert dump_canonical(again) == dump_canonical(doc)
    assert check_structure(doc) == []
