"""The engine as this process runs it: the configured model and tools around a version."""

from __future__ import annotations

from voxflow.core.context import AppContext
from voxflow.dsl.compile import CompiledVersion
from voxflow.engine.interpreter import Engine
from voxflow.providers.registry import configured_llm
from voxflow.tools.configured import configured_tools


def engine_for(context: AppContext, version: CompiledVersion) -> Engine:
    return Engine(version, llm=configured_llm(context), tools=configured_tools(context))
