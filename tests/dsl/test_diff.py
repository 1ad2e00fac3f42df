"""Differences between two versions of a workflow."""

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from voxflow.dsl import Change, WorkflowDocument, diff_documents

LUIGIS = Path(__file__).parents[2] / "examples" / "luigis.yaml"
BASE: dict[str, Any] = yaml.safe_load(LUIGIS.read_text())


def luigis() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    return diff_documents(
        WorkflowDocument.model_validate(old), WorkflowDocument.model_validate(new)
    )


def summary(changes: list[Change]) -> list[tuple[str, str, str | None]]:
    return [(c.op, c.pointer, c.node_id) for c in changes]


class TestDiffDocuments:
    def test_identical_documents_have_no_changes(self) -> None:
        assert diff(luigis(), luigis()) == []

    def test_reordering_nodes_is_not_a_change(self) -> None:
        new = luigis()
        new["nodes"].reverse()

        assert diff(luigis(), new) == []

    def test_added_node_is_one_change_at_its_new_index(self) -> None:
        new = luigis()
        save = {"id": "save", "type": "action", "tool": "airtable.create_record", "next": "bye"}
        new["nodes"].insert(6, save)

        [change] = diff(luigis(), new)

        assert (change.op, change.pointer, change.node_id) == ("added", "/nodes/6", "save")
        assert change.new == save | {"args": {}}
        assert change.old is None

    def test_removed_node_is_one_change_at_its_old_index(self) -> None:
        new = luigis()
        del new["nodes"][6]

        [change] = diff(luigis(), new)

        assert (change.op, change.pointer, change.node_id) == ("removed", "/nodes/6", "hours")
        assert change.old["text"] == "We're open 5 to 11 pm every day."

    def test_changed_node_lists_each_changed_field(self) -> None:
        new = luigis()
        new["nodes"].reverse()
        ask_party = new["nodes"][7]
        ask_party["retries"] = 3
        ask_party["confirm"] = True
        del ask_party["invalid"]
        ask_party["title"] = "Party size"

        changes = diff(luigis(), new)

        assert summary(changes) == [
            ("changed", "/nodes/7/title", "ask_party"),
            ("changed", "/nodes/7/retries", "ask_party"),
            ("changed", "/nodes/7/confirm", "ask_party"),
            ("changed", "/nodes/7/invalid", "ask_party"),
        ]
        assert (changes[0].old, changes[0].new) == (None, "Party size")
        assert (changes[1].old, changes[1].new) == (2, 3)
        assert changes[3].new is None

    def test_changing_a_node_type_shows_type_and_fields(self) -> None:
        new = luigis()
        new["nodes"][6] = {"id": "hours", "type": "end", "text": "We're open 5 to 11 pm every day."}

        assert summary(diff(luigis(), new)) == [
            ("changed", "/nodes/6/type", "hours"),
            ("changed", "/nodes/6/outcome", "hours"),
            ("changed", "/nodes/6/next", "hours"),
        ]

    def test_settings_are_compared_down_to_the_changed_key(self) -> None:
        new = luigis()
        new["settings"]["max_duration_s"] = 300
        new["settings"]["global_routes"] = [{"to": "human", "intent": "operator"}]

        changes = diff(luigis(), new)

        assert summary(changes) == [
            ("changed", "/settings/max_duration_s", None),
            ("changed", "/settings/global_routes", None),
        ]
        assert (changes[0].old, changes[0].new) == (600, 300)
        assert [route["intent"] for route in changes[1].old] == ["human"]

    def test_variables_added_removed_and_changed(self) -> None:
        new = luigis()
        new["variables"]["booking"] = {"type": "object"}
        del new["variables"]["guest_name"]
        new["variables"]["day"]["description"] = "Day of the booking"

        changes = diff(luigis(), new)

        assert summary(changes) == [
            ("added", "/variables/day/description", None),
            ("added", "/variables/booking", None),
            ("removed", "/variables/guest_name", None),
        ]
        assert changes[1].new == {"type": "object"}

    def test_top_level_description_added(self) -> None:
        new = luigis() | {"description": "Books tables", "name": "Luigi's"}

        assert summary(diff(luigis(), new)) == [
            ("changed", "/name", None),
            ("added", "/description", None),
        ]

    def test_true_and_one_are_different_values(self) -> None:
        old = luigis()
        old["variables"]["party_size"]["default"] = 1
        new = luigis()
        new["variables"]["party_size"]["default"] = True

        assert summary(diff(old, new)) == [("changed", "/variables/party_size/default", None)]


# --- property tests -------------------------------------------------------------------------


@st.composite
def variants(draw: st.DrawFn) -> WorkflowDocument:
    """Luigi's with nodes dropped, shuffled, edited or added, and settings and variables edited."""
    data = luigis()
    kept = draw(st.lists(st.sampled_from(data["nodes"]), min_size=1, unique_by=lambda n: n["id"]))
    for node in kept:
        if draw(st.booleans()):
            node["title"] = draw(st.text(max_size=5))
    extra = draw(st.lists(st.sampled_from(["extra1", "extra2"]), unique=True))
    kept += [{"id": node_id, "type": "end", "outcome": "failed"} for node_id in extra]
    data["nodes"] = draw(st.permutations(kept))
    data["settings"]["language"] = draw(st.sampled_from(["en", "it"]))
    if draw(st.booleans()):
        data["settings"]["global_routes"] = [{"to": "human"}]
    if draw(st.booleans()):
        data["variables"].pop("day")
    data["description"] = draw(st.none() | st.sampled_from(["a", "b"]))
    return WorkflowDocument.model_validate(data)


def canonical(doc: WorkflowDocument) -> dict[str, Any]:
    return doc.model_dump(mode="json", by_alias=True, exclude_none=True)


def resolve(data: Any, pointer: str) -> Any:
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


@settings(max_examples=100, deadline=None)
@given(variants())
def test_a_document_never_differs_from_itself(doc: WorkflowDocument) -> None:
    assert diff_documents(doc, doc) == []


@settings(max_examples=200, deadline=None)
@given(variants(), variants())
def test_every_change_points_at_its_value(old: WorkflowDocument, new: WorkflowDocument) -> None:
    before, after = canonical(old), canonical(new)

    changes = diff_documents(old, new)

    for change in changes:
        parent, _, key = change.pointer.rpartition("/")
        if change.op == "removed":
            assert resolve(before, change.pointer) == change.old
            continue
        container = resolve(after, parent)
        assert change.new == (
            container[int(key)] if isinstance(container, list) else container.get(key)
        )
    same_nodes = sorted(before.pop("nodes"), key=str) == sorted(after.pop("nodes"), key=str)
    assert (changes == []) == (same_nodes and before == after)
