"""The language model a call gets: the operator's, else one on the org's own OpenAI key.

The org's key is a vault secret created over the API; OpenAI itself is faked with respx, so the
real SDK request goes out with the org's key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import respx
from structlog.testing import capture_logs

from support import OrgHandle, make_settings
from voxflow.core.context import AppContext
from voxflow.providers.llm import ChatMessage, LLMError, OpenAICompatibleLLM
from voxflow.providers.registry import ProviderKeyMissing, configured_llm, org_llm

ORG_KEY = "sk-org-5e0c1a77b2d94f"
OPENAI = "https://api.openai.com/v1"


def completion(text: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-A1b2C3",
        "object": "chat.completion",
        "created": 1_795_000_000,
        "model": model,
        "system_fingerprint": "fp_f85bea6784",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }


@pytest.fixture
def openai_api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=OPENAI, assert_all_called=False) as router:
        yield router


def operator(context: AppContext, **settings: Any) -> AppContext:
    """The same database and vault under other operator settings (and empty caches)."""
    changed = make_settings(context.settings.database_url, **settings)
    return replace(context, settings=changed, extras={"vault": context.extras.get("vault")})


async def add_secret(client: httpx.AsyncClient, org: OrgHandle, name: str, value: str) -> None:
    response = await client.post(
        "/v1/secrets", json={"name": name, "value": value}, headers=org.headers
    )
    assert response.status_code == 201, response.text


async def secret_reads(client: httpx.AsyncClient, org: OrgHandle) -> list[str]:
    response = await client.get("/v1/audit", params={"action": "secret.read"}, headers=org.headers)
    return [item["actor_id"] for item in response.json()["items"]]


async def test_the_orgs_openai_key_answers_with_the_default_model(
    client: httpx.AsyncClient, org: OrgHandle, context: AppContext, openai_api: respx.MockRouter
) -> None:
    await add_secret(client, org, "OPENAI_API_KEY", ORG_KEY)
    route = openai_api.post("/chat/completions").respond(
        json=completion("Buongiorno!", "gpt-4o-mini-2024-07-18")
    )

    with capture_logs() as logs:
        llm = await org_llm(operator(context), org.id, "call_r1", "auto")
        assert llm is not None
        reply = await llm.complete([ChatMessage(role="user", content="hi")])

    assert reply.text == "Buongiorno!"
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {ORG_KEY}"
    assert b'"model":"gpt-4o-mini"' in request.content.replace(b" ", b"")
    assert ORG_KEY not in repr(logs)
    assert await secret_reads(client, org) == ["call_r1"]


async def test_a_failing_openai_is_retried_once_and_the_error_hides_the_key(
    client: httpx.AsyncClient, org: OrgHandle, context: AppContext, openai_api: respx.MockRouter
) -> None:
    await add_secret(client, org, "OPENAI_API_KEY", ORG_KEY)
    route = openai_api.post("/chat/completions").respond(
        status_code=500, json={"error": {"message": f"upstream failed for key {ORG_KEY}"}}
    )
    llm = await org_llm(operator(context), org.id, "call_r2", "openai")
    assert isinstance(llm, OpenAICompatibleLLM)
    llm._retry_wait_s = 0  # the retry itself is what is pinned, not its pause

    with pytest.raises(LLMError, match="HTTP 500") as failed:
        await llm.complete([ChatMessage(role="user", content="hi")])

    assert route.call_count == 2
    assert ORG_KEY not in str(failed.value)


async def test_the_operator_model_wins_and_no_org_secret_is_read(
    client: httpx.AsyncClient, org: OrgHandle, context: AppContext
) -> None:
    await add_secret(client, org, "OPENAI_API_KEY", ORG_KEY)
    ctx = operator(context, llm_model="llama3.1:8b", llm_base_url="http://127.0.0.1:11434/v1")

    llm = await org_llm(ctx, org.id, "call_r3", "auto")

    assert llm is configured_llm(ctx)
    assert await secret_reads(client, org) == []


async def test_local_means_no_model_and_auto_without_a_key_is_offline(
    org: OrgHandle, context: AppContext
) -> None:
    ctx = operator(context, llm_model="llama3.1:8b")

    assert await org_llm(ctx, org.id, "call_r4", "local") is None
    assert await org_llm(operator(context), org.id, "call_r4", "auto") is None


async def test_openai_named_without_any_key_says_which_secret_to_add(
    org: OrgHandle, context: AppContext
) -> None:
    with pytest.raises(ProviderKeyMissing, match="add the secret OPENAI_API_KEY under Secrets"):
        await org_llm(operator(context), org.id, "call_r5", "openai")


async def test_one_client_per_org_and_key_and_a_rotated_key_gets_a_new_one(
    client: httpx.AsyncClient, org: OrgHandle, context: AppContext
) -> None:
    await add_secret(client, org, "OPENAI_API_KEY", ORG_KEY)
    ctx = operator(context)
    first = await org_llm(ctx, org.id, "call_r6", "auto")
    second_call = await org_llm(ctx, org.id, "call_r7", "auto")

    rotated = await client.put(
        "/v1/secrets/OPENAI_API_KEY", json={"value": ORG_KEY + "-v2"}, headers=org.headers
    )
    assert rotated.status_code == 200, rotated.text
    after_rotation = await org_llm(ctx, org.id, "call_r8", "auto")
    same_call_again = await org_llm(ctx, org.id, "call_r6", "auto")

    assert first is second_call
    assert after_rotation is not first
    assert same_call_again is first  # a call keeps the model it started with
