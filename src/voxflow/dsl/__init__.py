"""The `voxflow/v1` workflow language: models, parsing, structural checks and diffs.

Pure: depends only on pydantic, PyYAML and the standard library, so storage (`workflows/`) and
execution (`engine/`) can both build on it.
"""

from voxflow.dsl.diff import Change, diff_documents
from voxflow.dsl.findings import Finding, json_pointer
from voxflow.dsl.jsonschema import json_schema
from voxflow.dsl.parse import (
    DocumentInvalid,
    UnsupportedMediaType,
    document_sha256,
    dump_canonical,
    load_document,
    load_text,
    parse_document,
)
from voxflow.dsl.schema import (
    ActionNode,
    Branch,
    BranchNode,
    CollectNode,
    ConversationNode,
    EndNode,
    Node,
    Route,
    SayNode,
    TransferNode,
    VariableSpec,
    WorkflowDocument,
    WorkflowSettings,
)
from voxflow.dsl.structure import check_structure

__all__ = [
    "ActionNode",
    "Branch",
    "BranchNode",
    "Change",
    "CollectNode",
    "ConversationNode",
    "DocumentInvalid",
    "EndNode",
    "Finding",
    "Node",
    "Route",
    "SayNode",
    "TransferNode",
    "UnsupportedMediaType",
    "VariableSpec",
    "WorkflowDocument",
    "WorkflowSettings",
    "check_structure",
    "diff_documents",
    "document_sha256",
    "dump_canonical",
    "json_pointer",
    "json_schema",
    "load_document",
    "load_text",
    "parse_document",
]
