"""The tool registry this process runs workflows with, as the settings allow."""

from __future__ import annotations

from voxflow.core.context import AppContext
from voxflow.tools.registry import ToolRegistry, default_registry


def configured_tools(context: AppContext) -> ToolRegistry:
    """One registry per process (it holds the HTTP client of `http.request`)."""
    tools: ToolRegistry | None = context.extras.get("tools")
    if tools is None:
        tools = default_registry(
            allow_private_networks=context.settings.tools_allow_private_networks
        )
        context.extras["tools"] = tools
    return tools
