"""The document models: what a valid `voxflow/v1` document looks like."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from voxflow.dsl import (
    BranchNode,
    CollectNode,
    ConversationNode,
    EndNode,
    SayNode,
    TransferNode,
    VariableSpec,
    WorkflowDocument,
    json_schema,
)

LUIGIS = Path(__file__).parents[2] / "examples" / "luigis.yaml"


def minimal(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": "voxflow/v1",
        "name": "Minimal",
        "start": "bye",
        "nodes": [{"id": "bye", "type": "end"}],
    }
    return doc | changes


def error_locs(data: dict[str, Any]) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as caught:
        WorkflowDocument.model_validate(data)
    return [error["loc"] for error in caught.value.errors()]


class TestWorkflowDocument:
    def test_luigis_example_has_every_node_typed(self) -> None:
        doc = WorkflowDocument.model_validate(yaml.safe_load(LUIGIS.read_text()))

        kinds = [type(node) for node in doc.nodes]
        assert kinds[:4] == [SayNode, ConversationNode, CollectNode, BranchNode]
        assert kinds[-3:] == [TransferNode, TransferNode, EndNode]
        branch = doc.nodes[3]
        assert isinstance(branch, BranchNode)
        assert branch.else_ == "ask_day"
        assert doc.variables["party_size"].type == "integer"

    def test_defaults_fill_in_what_the_author_left_out(self) -> None:
        doc = WorkflowDocument.model_validate(minimal())

        assert doc.description is None
        assert doc.variables == {}
        settings = doc.settings
        assert (settings.language, settings.timezone, settings.max_duration_s) == ("en", "UTC", 600)
        assert (settings.stt, settings.llm, settings.tts) == ("auto", "auto", "auto")
        assert settings.interruptions is True
        assert settings.global_routes == []
        end = doc.nodes[0]
        assert isinstance(end, EndNode)
        assert end.outcome == "completed"

    def test_node_defaults(self) -> None:
        doc = WorkflowDocument.model_validate(
            minimal(
                variables={"n": {"type": "integer"}},
                nodes=[
                    {"id": "c", "type": "collect", "variable": "n", "prompt": "?", "next": "t"},
                    {"id": "t", "type": "transfer", "to": "tel:+15550100"},
                ],
            )
        )

        collect, transfer = doc.nodes
        assert isinstance(collect, CollectNode)
        assert (collect.retries, collect.confirm, collect.validate_) == (2, False, None)
        assert isinstance(transfer, TransferNode)
        assert transfer.mode == "cold"

    def test_aliases_are_used_for_input_and_output(self) -> None:
        doc = WorkflowDocument(
            schema_="voxflow/v1", name="x", start="b", nodes=[EndNode(id="b", type="end")]
        )

        dumped = doc.model_dump()
        assert dumped["schema"] == "voxflow/v1"
        assert "schema_" not in dumped

    def test_only_v1_is_accepted(self) -> None:
        assert error_locs(minimal(schema="voxflow/v2")) == [("schema",)]

    def test_unknown_keys_are_rejected_everywhere(self) -> None:
        data = minimal(colour="red", settings={"volume": 11})
        data["nodes"] = [{"id": "bye", "type": "end", "next": "bye"}]

        assert error_locs(data) == [
            ("settings", "volume"),
            ("nodes", 0, "end", "next"),
            ("colour",),
        ]

    @pytest.mark.parametrize("node_id", ["1st", "_x", "a b", "x" * 65, ""])
    def test_node_ids_must_be_short_identifiers(self, node_id: str) -> None:
        data = minimal(nodes=[{"id": node_id, "type": "end"}])

        assert error_locs(data) == [("nodes", 0, "end", "id")]

    def test_variable_names_must_be_identifiers(self) -> None:
        data = minimal(variables={"ok_1": {"type": "string"}, "not-ok": {"type": "string"}})

        assert error_locs(data) == [("variables", "not-ok", "[key]")]

    def test_needs_between_one_and_a_thousand_nodes(self) -> None:
        too_many = [{"id": f"n{i}", "type": "end"} for i in range(1001)]

        assert error_locs(minimal(nodes=[])) == [("nodes",)]
        assert error_locs(minimal(nodes=too_many)) == [("nodes",)]

    def test_text_and_conditions_are_bounded(self) -> None:
        data = minimal(
            nodes=[
                {"id": "s", "type": "say", "text": "x" * 4001, "next": "b"},
                {
                    "id": "b",
                    "type": "branch",
                    "branches": [{"when": "x" * 2049, "to": "s"}],
                    "else": "s",
                },
            ]
        )

        assert error_locs(data) == [
            ("nodes", 0, "say", "text"),
            ("nodes", 1, "branch", "branches", 0, "when"),
        ]

    def test_integers_and_booleans_are_not_coerced(self) -> None:
        data = minimal(settings={"interruptions": "no", "max_duration_s": "60"})
        data["nodes"] = [
            {
                "id": "c",
                "type": "conversation",
                "prompt": "p",
                "routes": [{"to": "c"}],
                "max_turns": True,
            }
        ]

        assert error_locs(data) == [
            ("settings", "max_duration_s"),
            ("settings", "interruptions"),
            ("nodes", 0, "conversation", "max_turns"),
        ]

    def test_conversation_needs_a_route(self) -> None:
        data = minimal(nodes=[{"id": "c", "type": "conversation", "prompt": "p", "routes": []}])

        assert error_locs(data) == [("nodes", 0, "conversation", "routes")]


class TestVariableSpec:
    def test_enum_takes_choices_with_synonyms(self) -> None:
        spec = VariableSpec.model_validate(
            {"type": "enum", "choices": {"pickup": ["pick up"], "delivery": ["bring it"]}}
        )

        assert spec.choices == {"pickup": ["pick up"], "delivery": ["bring it"]}

    @pytest.mark.parametrize("choices", [None, {}])
    def test_enum_without_choices_is_rejected_at_choices(self, choices: object) -> None:
        data: dict[str, Any] = {"type": "enum"}
        if choices is not None:
            data["choices"] = choices

        with pytest.raises(ValidationError) as caught:
            VariableSpec.model_validate(data)

        assert [e["loc"] for e in caught.value.errors()] == [("choices",)]

    def test_choices_on_other_types_are_rejected(self) -> None:
        with pytest.raises(ValidationError, match="only allowed for enum"):
            VariableSpec.model_validate({"type": "string", "choices": {"a": []}})

    def test_default_may_be_any_json_value(self) -> None:
        spec = VariableSpec.model_validate({"type": "object", "default": {"a": [1, None]}})

        assert spec.default == {"a": [1, None]}


class TestJsonSchema:
    def test_uses_aliases_and_forbids_extra_keys(self) -> None:
        schema = json_schema()

        assert schema["required"] == ["schema", "name", "start", "nodes"]
        assert schema["additionalProperties"] is False
        assert "else" in schema["$defs"]["BranchNode"]["properties"]
        assert "validate" in schema["$defs"]["CollectNode"]["properties"]

    def test_nodes_are_a_union_discriminated_by_type(self) -> None:
        items = json_schema()["properties"]["nodes"]["items"]

        assert items["discriminator"]["propertyName"] == "type"
        assert set(items["discriminator"]["mapping"]) == {
            "say", "conversation", "collect", "branch", "action", "transfer", "end"
        }  # fmt: skip

    def test_every_field_is_described(self) -> None:
        schema = json_schema()
        models = [schema, *schema["$defs"].values()]

        def described(field: dict[str, Any]) -> bool:
            # Pydantic leaves out a field description that repeats its model's docstring.
            ref = field.get("$ref", "").removeprefix("#/$defs/")
            return "description" in field or "description" in schema["$defs"].get(ref, {})

        undescribed = [
            (model.get("title"), name)
            for model in models
            for name, field in model.get("properties", {}).items()
            if not described(field)
        ]
        assert undescribed == []
