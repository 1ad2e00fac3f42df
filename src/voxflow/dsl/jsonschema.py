"""JSON Schema of the DSL, published for the editor's node forms and the docs."""

from __future__ import annotations

from typing import Any

from voxflow.dsl.schema import WorkflowDocument


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a `voxflow/v1` document, with field aliases."""
    return WorkflowDocument.model_json_schema(by_alias=True)
