"""The engine as this process runs it: the configured model and tools around a version."""

from __future__ import annotations

from voxflow.core.context import AppContext
from voxflow.dsl.compile import CompiledVersion
from voxflow.engine.interpreter import Engine
from voxflow.integrations.tokens import OrgConnections
from voxflow.providers.registry import org_llm
from voxflow.tools.configured import configured_tools
from voxflow.tools.registry import ToolContext
from voxflow.vault.runtime import CallSecrets


async def engine_for(
    context: AppContext, version: CompiledVersion, *, org_id: str, call_id: str
) -> Engine:
    """The engine of one call: its tools act for the call's org, its secrets are the org's.

    Its model is the operator's, else one on the org's own OpenAI key (`org_llm`), else none.
    """
    tools = configured_tools(context).bind(
        ToolContext(
            org_id=org_id,
            call_id=call_id,
            connections=OrgConnections(context, org_id, call_id),
        )
    )
    return Engine(
        version,
        llm=await org_llm(context, org_id, call_id, version.document.settings.llm),
        tools=tools,
        secrets=CallSecrets(context, org_id, call_id),
    )
