"""Fixtures for OpenAICompatibleLLM: a faked network and a provider pointed at it.

Only the network is faked (respx patches httpx), so the real SDK request building, SSE
decoding and error classes run exactly as they would against a server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import respx

from voxflow.providers.llm import OpenAICompatibleLLM


@pytest.fixture
def base_url() -> str:
    return "http://127.0.0.1:11434/v1"  # Ollama's OpenAI-compatible endpoint


@pytest.fixture
def api_key() -> str:
    return "sk-test-very-secret-key"


@pytest.fixture
def network(base_url: str) -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=base_url, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def llm(base_url: str, api_key: str) -> AsyncIterator[OpenAICompatibleLLM]:
    async with OpenAICompatibleLLM(
        "llama3.1:8b", base_url=base_url, api_key=api_key, timeout_s=5.0, retry_wait_s=0
    ) as provider:
        yield provider
