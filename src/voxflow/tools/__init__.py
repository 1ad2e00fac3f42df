"""Tools that workflow `action` nodes call: the registry, its builtins and the SSRF guard."""

from voxflow.tools.http import HttpRequestArgs, HttpRequestTool
from voxflow.tools.network import AddressPolicy, non_public_reason
from voxflow.tools.registry import (
    ArgProblem,
    Tool,
    ToolError,
    ToolRegistry,
    ToolSpec,
    default_registry,
    is_template,
)

__all__ = [
    "AddressPolicy",
    "ArgProblem",
    "HttpRequestArgs",
    "HttpRequestTool",
    "Tool",
    "ToolError",
    "ToolRegistry",
    "ToolSpec",
    "default_registry",
    "is_template",
    "non_public_reason",
]
