"""The providers this process is configured with (settings → one client per process)."""

from __future__ import annotations

from voxflow.core.context import AppContext
from voxflow.providers.llm import LLM, OpenAICompatibleLLM


def configured_llm(context: AppContext) -> LLM | None:
    """The model from `VOXFLOW_LLM_*`, or None: offline (routes by examples, no judge)."""
    settings = context.settings
    if settings.llm_model is None:
        return None
    llm: LLM | None = context.extras.get("llm")
    if llm is None:
        api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        llm = OpenAICompatibleLLM(
            settings.llm_model,
            base_url=settings.llm_base_url,
            api_key=api_key,
            timeout_s=settings.llm_timeout_s,
        )
        context.extras["llm"] = llm
    return llm
