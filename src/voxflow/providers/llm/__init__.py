"""LLM providers: the interface, an OpenAI-compatible client and a scripted stand-in."""

from voxflow.providers.llm.base import (
    LLM,
    ChatMessage,
    FunctionSpec,
    LLMChunk,
    LLMError,
    LLMResponse,
    ToolCallRequest,
)
from voxflow.providers.llm.openai_compatible import OpenAICompatibleLLM
from voxflow.providers.llm.scripted import ScriptedLLM, ScriptedReply, ScriptedRequest

__all__ = [
    "LLM",
    "ChatMessage",
    "FunctionSpec",
    "LLMChunk",
    "LLMError",
    "LLMResponse",
    "OpenAICompatibleLLM",
    "ScriptedLLM",
    "ScriptedReply",
    "ScriptedRequest",
    "ToolCallRequest",
]
