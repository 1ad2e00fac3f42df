"""Reading documents from text, error pointers, canonical form; with property tests."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from voxflow.dsl import (
    DocumentInvalid,
    Finding,
    UnsupportedMediaType,
    WorkflowDocument,
    document_sha256,
    dump_canonical,
    load_document,
    load_text,
    parse_document,
)

LUIGIS = Path(__file__).parents[2] / "examples" / "luigis.yaml"
YAML = "application/yaml"


def luigis() -> dict[str, Any]:
    return yaml.safe_load(LUIGIS.read_text())


def findings_for(data: object) -> list[tuple[str, str]]:
    with pytest.raises(DocumentInvalid) as caught:
        parse_document(data)
    return [(f.code, f.pointer) for f in caught.value.findings]


def text_findings(text: str | bytes, media_type: str = YAML) -> list[Finding]:
    with pytest.raises(DocumentInvalid) as caught:
        load_document(text, media_type)
    return caught.value.findings


class TestParseDocument:
    def test_luigis_example_parses(self) -> None:
        doc = load_document(LUIGIS.read_bytes(), YAML)

        assert doc.name == "Luigi's bookings"
        assert len(doc.nodes) == 10

    def test_bad_node_field_points_into_the_node_not_the_union(self) -> None:
        data = luigis()
        data["nodes"][2]["retries"] = -1
        del data["nodes"][4]["variable"]

        assert findings_for(data) == [
            ("greater_than_equal", "/nodes/2/retries"),
            ("missing", "/nodes/4/variable"),
        ]

    def test_bad_enum_value(self) -> None:
        data = luigis()
        data["nodes"][7]["mode"] = "lukewarm"
        data["variables"]["day"]["type"] = "weekday"

        assert findings_for(data) == [
            ("literal_error", "/variables/day/type"),
            ("literal_error", "/nodes/7/mode"),
        ]

    def test_unknown_or_missing_node_type_points_at_type(self) -> None:
        data = luigis()
        data["nodes"][0]["type"] = "sing"
        del data["nodes"][1]["type"]

        assert findings_for(data) == [
            ("union_tag_invalid", "/nodes/0/type"),
            ("union_tag_not_found", "/nodes/1/type"),
        ]

    def test_pointers_use_the_names_the_author_wrote(self) -> None:
        data = luigis()
        data["schema"] = "voxflow/v0"
        data["nodes"][3]["else"] = 7
        data["nodes"][2]["validate"] = 5

        assert findings_for(data) == [
            ("literal_error", "/schema"),
            ("string_type", "/nodes/2/validate"),
            ("string_type", "/nodes/3/else"),
        ]

    def test_bad_variable_name_points_at_the_entry(self) -> None:
        data = luigis()
        data["variables"]["a/b"] = {"type": "string"}

        assert findings_for(data) == [("string_pattern_mismatch", "/variables/a~1b")]

    def test_every_finding_is_an_error(self) -> None:
        with pytest.raises(DocumentInvalid) as caught:
            parse_document({"schema": 1})

        assert {f.severity for f in caught.value.findings} == {"error"}
        assert "Input should be 'voxflow/v1'" in str(caught.value)

    def test_a_huge_document_is_refused_before_validation(self) -> None:
        nested: object = "x"
        for _ in range(100):
            nested = [nested]

        assert findings_for({"deep": nested}) == [("too_large", "")]
        assert findings_for({"wide": list(range(200_000))}) == [("too_large", "")]


class TestYamlTraps:
    def test_unquoted_yes_and_no_become_booleans_and_are_reported(self) -> None:
        text = LUIGIS.read_text().replace('examples: ["yes", ', "examples: [yes, no, ")

        findings = text_findings(text)

        assert [f.pointer for f in findings] == [
            "/nodes/1/routes/0/examples/0",
            "/nodes/1/routes/0/examples/1",
        ]
        assert "quote them" in findings[0].message

    def test_norway_problem(self) -> None:
        text = LUIGIS.read_text().replace("language: en", "language: no")

        assert [(f.code, f.pointer) for f in text_findings(text)] == [
            ("string_type", "/settings/language")
        ]

    def test_an_unknown_speech_provider_is_named_where_it_is_written(self) -> None:
        text = LUIGIS.read_text().replace("stt: auto", "stt: whisperx")

        [finding] = text_findings(text)

        assert (finding.code, finding.pointer) == ("literal_error", "/settings/stt")
        assert "deepgram" in finding.message

    def test_yes_is_not_a_number_of_retries(self) -> None:
        text = LUIGIS.read_text().replace("retries: 2", "retries: yes")

        assert [f.pointer for f in text_findings(text)] == ["/nodes/2/retries"]

    def test_unquoted_question_mark_in_a_flow_mapping_is_a_syntax_error(self) -> None:
        # PyYAML ends a plain scalar at "?" inside `{...}`: prompts with questions need quotes.
        text = LUIGIS.read_text().replace('prompt: "Which day?"', "prompt: Which day?")

        [finding] = text_findings(text)

        assert (finding.code, finding.pointer) == ("syntax", "")
        assert "line 29, column 66" in finding.message


class TestLoadText:
    def test_yaml_syntax_error_says_where(self) -> None:
        [finding] = text_findings("name: x\nnodes: [a, b\nstart: a\n")

        assert (finding.code, finding.pointer) == ("syntax", "")
        assert "line 3, column 6" in finding.message

    def test_json_syntax_error_says_where(self) -> None:
        [finding] = text_findings('{\n  "name": "x",\n}', "application/json")

        assert finding.code == "syntax"
        assert "line 3, column 1" in finding.message

    def test_invalid_utf8_is_a_syntax_error(self) -> None:
        [finding] = text_findings(b'{"name": "\xff"}', "application/json")

        assert finding.code == "syntax"
        assert "UTF-8" in finding.message

    @pytest.mark.parametrize("text", ["name: 2024-13-01", "!!int ", "!!float ", "!!timestamp "])
    def test_malformed_typed_scalar_is_a_syntax_error(self, text: str) -> None:
        [finding] = text_findings(text)

        assert finding.code == "syntax"

    @pytest.mark.parametrize("text", ["", "- a\n- b\n", "just words", "42"])
    def test_top_level_must_be_a_mapping(self, text: str) -> None:
        [finding] = text_findings(text)

        assert (finding.code, finding.pointer) == ("not_a_mapping", "")

    def test_alias_bomb_is_refused(self) -> None:
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]

        [finding] = text_findings("\n".join(lines))

        assert finding.code == "too_large"

    @pytest.mark.parametrize(
        "media_type",
        ["application/json", "application/json; charset=utf-8", "application/problem+json"],
    )
    def test_json_media_types(self, media_type: str) -> None:
        assert load_text('{"a": 1}', media_type) == {"a": 1}

    @pytest.mark.parametrize(
        "media_type", ["application/yaml", "application/x-yaml", "text/yaml", "TEXT/YAML"]
    )
    def test_yaml_media_types(self, media_type: str) -> None:
        assert load_text("a: 1\n", media_type) == {"a": 1}

    def test_other_media_types_are_refused(self) -> None:
        with pytest.raises(UnsupportedMediaType):
            load_text("a=1", "text/plain")

    def test_byte_order_mark_is_ignored(self) -> None:
        assert load_text('\ufeff{"a": 1}'.encode(), "application/json") == {"a": 1}


class TestCanonicalForm:
    def test_yaml_and_json_of_one_document_hash_alike(self) -> None:
        from_yaml = load_document(LUIGIS.read_text(), YAML)
        from_json = load_document(json.dumps(luigis(), indent=2), "application/json")

        assert dump_canonical(from_yaml) == dump_canonical(from_json)

    def test_is_compact_sorted_and_uses_aliases(self) -> None:
        canonical = dump_canonical(load_document(LUIGIS.read_text(), YAML))

        assert canonical.startswith('{"name":"Luigi\'s bookings","nodes":[{')
        assert '"else":"ask_day"' in canonical
        assert '"schema":"voxflow/v1"' in canonical
        assert "null" not in canonical

    def test_sha256_is_hex_of_the_utf8_text(self) -> None:
        assert document_sha256("") == (
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        assert len(document_sha256("é")) == 64


# --- property tests -------------------------------------------------------------------------


def outcome(parse: Callable[..., WorkflowDocument], *args: object) -> list[Finding]:
    """Findings of a failed parse, [] on success; any other exception fails the test."""
    try:
        parse(*args)
    except DocumentInvalid as exc:
        findings = exc.findings
    else:
        return []
    assert findings, "a DocumentInvalid always says what is wrong"
    return findings


schema_words = st.sampled_from(
    ["schema", "voxflow/v1", "name", "start", "nodes", "settings", "variables", "id", "type",
     "say", "collect", "branch", "conversation", "routes", "to", "else", "next", "choices"]
)  # fmt: skip
anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10) | schema_words,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(schema_words | st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(anything)
def test_any_value_is_either_a_document_or_located_findings(data: object) -> None:
    findings = outcome(parse_document, data)

    for finding in findings:
        assert finding.pointer == "" or finding.pointer.startswith("/")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.sampled_from([YAML, "application/json"]))
def test_any_text_is_either_a_document_or_findings(text: str, media_type: str) -> None:
    outcome(load_document, text, media_type)


class TestDuplicateKeys:
    def test_yaml_duplicate_key_is_a_syntax_finding_with_its_line(self) -> None:
        text = "schema: voxflow/v1\nname: a\nname: b\nstart: s\nnodes: []\n"
        with pytest.raises(DocumentInvalid) as caught:
            load_text(text, "application/yaml")
        (finding,) = caught.value.findings
        assert finding.code == "syntax"
        assert "duplicate key 'name' at line 3" in finding.message

    def test_json_duplicate_key_is_a_syntax_finding(self) -> None:
        with pytest.raises(DocumentInvalid) as caught:
            load_text('{"name": "a", "name": "b"}', "application/json")
        assert "duplicate key 'name'" in caught.value.findings[0].message
