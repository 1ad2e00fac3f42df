"""Field-level differences between two workflow documents, for version diffs in the API and UI."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from voxflow.dsl.findings import json_pointer
from voxflow.dsl.schema import WorkflowDocument

Json = dict[str, Any]
_MISSING: Any = object()


class Change(BaseModel):
    """One difference between two documents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Literal["added", "removed", "changed"] = Field(description="Kind of change.")
    pointer: str = Field(
        description="JSON pointer to the value: into the new document, or the old for removals."
    )
    node_id: str | None = Field(None, description="Id of the node the change belongs to.")
    old: Any = Field(None, description="Value before (absent for additions).")
    new: Any = Field(None, description="Value after (absent for removals).")


def diff_documents(old: WorkflowDocument, new: WorkflowDocument) -> list[Change]:
    """List the changes that turn `old` into `new`.

    Both documents are compared in their canonical form (defaults filled in, `None` omitted).
    Top-level values other than `nodes` are compared key by key down to the deepest differing
    mapping key; lists (such as `settings.global_routes`) are compared whole.

    Nodes are matched by id, so reordering nodes alone produces no change at all. A node only in
    `new` is one `added` change at `/nodes/<index in new>`; a node only in `old` is one `removed`
    change at `/nodes/<index in old>`; a node in both gives one `changed` change per differing
    field at `/nodes/<index in new>/<field>` (a field absent on one side counts as `None`). If an
    id occurs more than once, the n-th occurrences on each side are matched.

    Order: top-level keys in document order, then nodes in `new` order, then removed nodes in
    `old` order.
    """
    before = _canonical(old)
    after = _canonical(new)
    changes: list[Change] = []
    for key in _keys(before, after):
        if key != "nodes":
            changes.extend(_diff_value(before.get(key, _MISSING), after.get(key, _MISSING), (key,)))
    changes.extend(_diff_nodes(before["nodes"], after["nodes"]))
    return changes


def _canonical(doc: WorkflowDocument) -> Json:
    return doc.model_dump(mode="json", by_alias=True, exclude_none=True)


def _keys(before: Json, after: Json) -> list[str]:
    return [*after, *(key for key in before if key not in after)]


def _same(a: Any, b: Any) -> bool:
    # `==` would call 1, 1.0 and True equal; the serialised forms tell them apart.
    return a is b or json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _diff_value(before: Any, after: Any, path: tuple[str | int, ...]) -> Iterator[Change]:
    pointer = json_pointer(*path)
    if before is _MISSING:
        yield Change(op="added", pointer=pointer, new=after)
    elif after is _MISSING:
        yield Change(op="removed", pointer=pointer, old=before)
    elif isinstance(before, dict) and isinstance(after, dict):
        for key in _keys(before, after):
            yield from _diff_value(
                before.get(key, _MISSING), after.get(key, _MISSING), (*path, key)
            )
    elif not _same(before, after):
        yield Change(op="changed", pointer=pointer, old=before, new=after)


def _by_identity(nodes: list[Json]) -> dict[tuple[str, int], tuple[int, Json]]:
    seen: Counter[str] = Counter()
    keyed: dict[tuple[str, int], tuple[int, Json]] = {}
    for index, node in enumerate(nodes):
        node_id = node["id"]
        keyed[(node_id, seen[node_id])] = (index, node)
        seen[node_id] += 1
    return keyed


def _diff_nodes(before: list[Json], after: list[Json]) -> Iterator[Change]:
    old_nodes = _by_identity(before)
    new_nodes = _by_identity(after)
    for key, (index, node) in new_nodes.items():
        node_id = key[0]
        if key not in old_nodes:
            yield Change(
                op="added", pointer=json_pointer("nodes", index), node_id=node_id, new=node
            )
            continue
        _, previous = old_nodes[key]
        for field in _keys(previous, node):
            was, now = previous.get(field), node.get(field)
            if not _same(was, now):
                pointer = json_pointer("nodes", index, field)
                yield Change(op="changed", pointer=pointer, node_id=node_id, old=was, new=now)
    for key, (index, node) in old_nodes.items():
        if key not in new_nodes:
            pointer = json_pointer("nodes", index)
            yield Change(op="removed", pointer=pointer, node_id=key[0], old=node)
