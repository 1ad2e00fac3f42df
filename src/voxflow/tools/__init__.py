"""Tools that workflow `action` nodes call: the registry, its builtins and the SSRF guard."""

from voxflow.tools.http import HttpRequestArgs, HttpRequestTool
from voxflow.tools.network import AddressPolicy, non_public_reason
from voxflow.tools.registry import (
    ArgProblem,
    BoundTools,
    ConnectionTokens,
    Tool,
    ToolContext,
    ToolError,
    ToolRegistry,
    ToolSpec,
    default_registry,
    is_template,
)

__all__ = [
    "AddressPolicy",
    "ArgProblem",
    "BoundTools",
    "ConnectionTokens",
    "HttpRequestArgs",
    "HttpRequestTool",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "ToolSpec",
    "default_registry",
    "is_template",
    "non_public_reason",
]
