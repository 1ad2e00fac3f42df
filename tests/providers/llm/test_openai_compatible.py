"""OpenAICompatibleLLM completions, errors and retries against replayed OpenAI-shaped HTTP
responses (the faked network and the provider come from conftest.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from voxflow.providers.llm import (
    LLM,
    ChatMessage,
    FunctionSpec,
    LLMError,
    OpenAICompatibleLLM,
    ToolCallRequest,
)

HELLO = [
    ChatMessage(role="system", content="You are Luigi's."),
    ChatMessage(role="user", content="hi"),
]
BOOK = FunctionSpec(
    name="route_book",
    description="The caller wants a table.",
    parameters={"type": "object", "properties": {"party_size": {"type": "integer"}}},
)


def completion(message: dict[str, Any], *, finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-9xYz",
        "object": "chat.completion",
        "created": 1_732_000_000,
        "model": "llama3.1:8b",
        "system_fingerprint": "fp_ollama",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28},
    }


def sent_body(route: respx.Route, call: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls[call].request.content)
    return body


# --- completions ---------------------------------------------------------------------------


async def test_complete_returns_text_model_and_usage(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    route = network.post("/chat/completions").respond(
        json=completion({"role": "assistant", "content": "Buongiorno! How can I help?"})
    )

    response = await llm.complete(HELLO)

    assert response.text == "Buongiorno! How can I help?"
    assert response.tool_calls == ()
    assert response.model == "llama3.1:8b"
    assert response.usage == {"prompt_tokens": 21, "completion_tokens": 7}
    assert route.call_count == 1


async def test_request_goes_to_base_url_with_model_messages_and_tools(
    network: respx.MockRouter, base_url: str
) -> None:
    route = network.post("/chat/completions").respond(
        json=completion({"role": "assistant", "content": "ok"})
    )

    async with OpenAICompatibleLLM(
        "qwen2.5:7b", base_url=base_url, api_key="sk-local", timeout_s=7.5
    ) as provider:
        await provider.complete(HELLO, functions=[BOOK], temperature=0.2, max_tokens=64)

    request = route.calls[0].request
    assert str(request.url) == "http://127.0.0.1:11434/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-local"
    assert request.extensions["timeout"] == dict.fromkeys(["connect", "read", "write", "pool"], 7.5)
    assert sent_body(route) == {
        "model": "qwen2.5:7b",
        "messages": [
            {"role": "system", "content": "You are Luigi's."},
            {"role": "user", "content": "hi"},
        ],
        "temperature": 0.2,
        "max_tokens": 64,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "route_book",
                    "description": "The caller wants a table.",
                    "parameters": BOOK.parameters,
                },
            }
        ],
        "tool_choice": "auto",
        "stream": False,
    }


async def test_no_functions_means_no_tools_in_the_request(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    route = network.post("/chat/completions").respond(
        json=completion({"role": "assistant", "content": "ok"})
    )

    await llm.complete(HELLO)

    assert "tools" not in sent_body(route)
    assert "tool_choice" not in sent_body(route)


async def test_tool_call_history_is_sent_in_openai_shape(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    route = network.post("/chat/completions").respond(
        json=completion({"role": "assistant", "content": "Done."})
    )
    call = ToolCallRequest(id="call_1", name="route_book", arguments={"party_size": 4})
    history = [
        *HELLO,
        ChatMessage(role="assistant", tool_calls=(call,)),
        ChatMessage(role="tool", tool_call_id="call_1", content='{"booked": true}'),
    ]

    await llm.complete(history, functions=[BOOK])

    assistant, tool_reply = sent_body(route)["messages"][2:]
    assert assistant == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "route_book", "arguments": '{"party_size": 4}'},
            }
        ],
    }
    assert tool_reply == {"role": "tool", "content": '{"booked": true}', "tool_call_id": "call_1"}


async def test_complete_parses_a_tool_call(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    network.post("/chat/completions").respond(
        json=completion(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_Q1",
                        "type": "function",
                        "function": {"name": "route_book", "arguments": '{"party_size": 2}'},
                    }
                ],
            },
            finish_reason="tool_calls",
        )
    )

    response = await llm.complete(HELLO, functions=[BOOK])

    assert response.text == ""
    assert response.tool_calls == (
        ToolCallRequest(id="call_Q1", name="route_book", arguments={"party_size": 2}),
    )


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
async def test_unusable_tool_arguments_are_a_permanent_error(
    network: respx.MockRouter, llm: OpenAICompatibleLLM, arguments: str
) -> None:
    tool_call = {
        "id": "c",
        "type": "function",
        "function": {"name": "route_book", "arguments": arguments},
    }
    route = network.post("/chat/completions").respond(
        json=completion({"role": "assistant", "content": None, "tool_calls": [tool_call]})
    )

    with pytest.raises(LLMError) as caught:
        await llm.complete(HELLO, functions=[BOOK])

    assert caught.value.retryable is False
    assert route.call_count == 1


async def test_empty_arguments_string_means_no_arguments(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    tool_call = {"id": "c", "type": "function", "function": {"name": "route_book", "arguments": ""}}
    network.post("/chat/completions").respond(
        json=completion({"role": "assistant", "content": None, "tool_calls": [tool_call]})
    )

    response = await llm.complete(HELLO, functions=[BOOK])

    assert response.tool_calls[0].arguments == {}


async def test_without_api_key_a_placeholder_is_sent_and_own_client_is_used(
    network: respx.MockRouter,
    base_url: str,
) -> None:
    route = network.post("/chat/completions").respond(
        json=completion({"role": "assistant", "content": "ok"})
    )

    # No http_client given: the provider makes its own httpx client, which respx still sees.
    async with OpenAICompatibleLLM("llama3.1:8b", base_url=base_url) as local:
        await local.complete(HELLO)

    assert route.calls[0].request.headers["authorization"] == "Bearer not-needed"


async def test_an_injected_http_client_is_used_and_left_open(
    network: respx.MockRouter, base_url: str
) -> None:
    network.post("/chat/completions").respond(
        json=completion({"role": "assistant", "content": "ok"})
    )
    async with httpx.AsyncClient(headers={"x-tenant": "acme"}) as shared:
        async with OpenAICompatibleLLM("m", base_url=base_url, http_client=shared) as provider:
            await provider.complete(HELLO)
        assert not shared.is_closed
    assert network.calls[0].request.headers["x-tenant"] == "acme"


# --- errors and retries ---------------------------------------------------------------------


async def test_rate_limit_then_success_retries_once(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    route = network.post("/chat/completions")
    route.side_effect = [
        httpx.Response(429, json={"error": {"message": "Rate limit reached", "type": "requests"}}),
        httpx.Response(200, json=completion({"role": "assistant", "content": "ok"})),
    ]

    response = await llm.complete(HELLO)

    assert response.text == "ok"
    assert route.call_count == 2


async def test_server_error_twice_gives_up_after_two_attempts(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    route = network.post("/chat/completions").respond(500, json={"error": {"message": "boom"}})

    with pytest.raises(LLMError) as caught:
        await llm.complete(HELLO)

    assert caught.value.retryable is True
    assert caught.value.status == 500
    assert "boom" in str(caught.value)
    assert route.call_count == 2


@pytest.mark.parametrize("timeout_error", [httpx.ReadTimeout, httpx.ConnectTimeout])
async def test_timeouts_are_retried_once_then_reported(
    network: respx.MockRouter, llm: OpenAICompatibleLLM, timeout_error: type[httpx.TimeoutException]
) -> None:
    route = network.post("/chat/completions").mock(side_effect=timeout_error("timed out"))

    with pytest.raises(LLMError, match="timed out") as caught:
        await llm.complete(HELLO)

    assert caught.value.retryable is True
    assert caught.value.status is None
    assert route.call_count == 2


async def test_connection_refused_is_retryable(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    route = network.post("/chat/completions").mock(side_effect=httpx.ConnectError("refused"))

    with pytest.raises(LLMError, match="connection failed") as caught:
        await llm.complete(HELLO)

    assert caught.value.retryable is True
    assert route.call_count == 2


async def test_unauthorized_is_not_retried_and_never_shows_the_key(
    network: respx.MockRouter, llm: OpenAICompatibleLLM, api_key: str
) -> None:
    # Some proxies echo the rejected key verbatim.
    body = {
        "error": {"message": f"Incorrect API key provided: {api_key}", "code": "invalid_api_key"}
    }
    route = network.post("/chat/completions").respond(401, json=body)

    with pytest.raises(LLMError) as caught:
        await llm.complete(HELLO)

    error = caught.value
    assert (error.retryable, error.status, route.call_count) == (False, 401, 1)
    assert api_key not in str(error)
    assert api_key not in repr(error)
    assert "[redacted]" in str(error)
    # The SDK's exception (whose text has the key) is neither the cause nor shown as context.
    assert error.__cause__ is None
    assert error.__suppress_context__


@pytest.mark.parametrize("status", [400, 403, 404])
async def test_client_errors_are_not_retried(
    network: respx.MockRouter, llm: OpenAICompatibleLLM, status: int
) -> None:
    route = network.post("/chat/completions").respond(status, json={"error": {"message": "no"}})

    with pytest.raises(LLMError) as caught:
        await llm.complete(HELLO)

    assert (caught.value.retryable, caught.value.status, route.call_count) == (False, status, 1)


async def test_satisfies_the_llm_protocol(llm: OpenAICompatibleLLM) -> None:
    provider: LLM = llm  # checked by mypy
    assert provider.name == "openai-compatible/llama3.1:8b"
