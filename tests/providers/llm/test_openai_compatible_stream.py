"""OpenAICompatibleLLM streaming against replayed SSE responses (see conftest.py).

The bodies arrive in small byte pieces through the real SDK decoder, as from a server.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from voxflow.providers.llm import (
    ChatMessage,
    FunctionSpec,
    LLMChunk,
    LLMError,
    OpenAICompatibleLLM,
    ToolCallRequest,
)

HELLO = [ChatMessage(role="user", content="hi")]
BOOK = FunctionSpec(name="route_book")


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-9xYz",
        "object": "chat.completion.chunk",
        "created": 1_732_000_000,
        "model": "llama3.1:8b",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def tool_delta(
    index: int, *, arguments: str, call_id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    fragment: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id is not None:
        fragment |= {"id": call_id, "type": "function"}
        fragment["function"]["name"] = name
    return {"tool_calls": [fragment]}


def sse_response(events: list[dict[str, Any]], *, break_after: int | None = None) -> httpx.Response:
    """An SSE response delivered in 7-byte pieces (lines split mid-way, as TCP may deliver
    them). With `break_after=n` the connection drops halfway through event n+1."""
    frames = [f"data: {json.dumps(event)}\n\n".encode() for event in events]
    frames.append(b"data: [DONE]\n\n")
    if break_after is not None:
        frames = [*frames[:break_after], frames[break_after][:20]]
    body = b"".join(frames)

    async def delivery() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 7):
            yield body[start : start + 7]
        if break_after is not None:
            raise httpx.RemoteProtocolError("peer closed connection mid-body")

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=delivery())


TEXT_EVENTS = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hello"}),
    chunk({"content": ", how can"}),
    chunk({"content": " I help?"}),
    chunk({}, finish_reason="stop"),
]
SPLIT_TOOL_CALL_EVENTS = [
    chunk(
        {
            "role": "assistant",
            "content": None,
            **tool_delta(0, arguments="", call_id="call_abc", name="route_book"),
        }
    ),
    chunk(tool_delta(0, arguments='{"party')),
    chunk(tool_delta(0, arguments='_size": ')),
    chunk(tool_delta(0, arguments="4}")),
    chunk({}, finish_reason="tool_calls"),
]


async def collect(stream: AsyncGenerator[LLMChunk, None]) -> list[LLMChunk]:
    return [piece async for piece in stream]


def sent_body(route: respx.Route) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls[0].request.content)
    return body


async def test_stream_yields_text_deltas_then_a_final_chunk(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    route = network.post("/chat/completions").mock(return_value=sse_response(TEXT_EVENTS))

    chunks = await collect(llm.stream(HELLO))

    assert [piece.text for piece in chunks[:-1]] == ["Hello", ", how can", " I help?"]
    assert chunks[-1] == LLMChunk(done=True)
    assert sent_body(route)["stream"] is True
    assert "stream_options" not in sent_body(route)  # llama.cpp / Ollama may reject it


async def test_stream_assembles_a_tool_call_split_across_chunks(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    network.post("/chat/completions").mock(return_value=sse_response(SPLIT_TOOL_CALL_EVENTS))

    chunks = await collect(llm.stream(HELLO, functions=[BOOK]))

    assert chunks == [
        LLMChunk(
            tool_calls=(
                ToolCallRequest(id="call_abc", name="route_book", arguments={"party_size": 4}),
            ),
            done=True,
        )
    ]


async def test_stream_assembles_parallel_tool_calls_by_index(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    events = [
        chunk(tool_delta(0, arguments='{"a"', call_id="call_1", name="route_book")),
        chunk(tool_delta(1, arguments="", call_id="call_2", name="route_faq")),
        chunk(tool_delta(1, arguments='{"q": "hours"}')),
        chunk(tool_delta(0, arguments=": 1}")),
        chunk({}, finish_reason="tool_calls"),
    ]
    network.post("/chat/completions").mock(return_value=sse_response(events))

    final = (await collect(llm.stream(HELLO, functions=[BOOK])))[-1]

    assert final.tool_calls == (
        ToolCallRequest(id="call_1", name="route_book", arguments={"a": 1}),
        ToolCallRequest(id="call_2", name="route_faq", arguments={"q": "hours"}),
    )


async def test_stream_with_invalid_tool_arguments_fails_permanently(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    events = [chunk(tool_delta(0, arguments='{"party_size": ', call_id="c", name="route_book"))]
    route = network.post("/chat/completions").mock(return_value=sse_response(events))

    with pytest.raises(LLMError) as caught:
        await collect(llm.stream(HELLO, functions=[BOOK]))

    assert caught.value.retryable is False
    assert route.call_count == 1


async def test_stream_usage_is_requested_only_when_enabled(
    network: respx.MockRouter, base_url: str
) -> None:
    usage_event = {
        **chunk({}),
        "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }
    route = network.post("/chat/completions").mock(
        return_value=sse_response([*TEXT_EVENTS, usage_event])
    )

    async with OpenAICompatibleLLM("m", base_url=base_url, stream_usage=True) as provider:
        chunks = await collect(provider.stream(HELLO))

    assert sent_body(route)["stream_options"] == {"include_usage": True}
    assert chunks[-1].usage == {"prompt_tokens": 9, "completion_tokens": 3}


async def test_stream_is_retried_when_it_fails_before_any_output(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    # The first attempt dies inside the tool call: the caller has seen nothing, so try again.
    route = network.post("/chat/completions")
    route.side_effect = [
        httpx.Response(503, json={"error": {"message": "loading model"}}),
        sse_response(SPLIT_TOOL_CALL_EVENTS),
    ]

    chunks = await collect(llm.stream(HELLO, functions=[BOOK]))

    assert chunks[-1].tool_calls[0].arguments == {"party_size": 4}
    assert route.call_count == 2


async def test_stream_breaking_mid_tool_call_is_retried(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    route = network.post("/chat/completions")
    route.side_effect = [
        sse_response(SPLIT_TOOL_CALL_EVENTS, break_after=2),
        sse_response(SPLIT_TOOL_CALL_EVENTS),
    ]

    chunks = await collect(llm.stream(HELLO, functions=[BOOK]))

    assert chunks[-1].tool_calls[0].name == "route_book"
    assert route.call_count == 2


async def test_stream_is_not_retried_after_text_was_yielded(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    route = network.post("/chat/completions")
    route.side_effect = [sse_response(TEXT_EVENTS, break_after=2), sse_response(TEXT_EVENTS)]
    received: list[str] = []

    async def consume() -> None:
        async for piece in llm.stream(HELLO):
            received.append(piece.text)

    with pytest.raises(LLMError) as caught:
        await consume()

    assert received == ["Hello"]
    assert caught.value.retryable is True  # the caller may restart the turn; we must not
    assert route.call_count == 1


async def test_stream_gives_up_after_two_failed_openings(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    route = network.post("/chat/completions").respond(502, text="Bad Gateway")

    with pytest.raises(LLMError) as caught:
        await collect(llm.stream(HELLO))

    assert (caught.value.retryable, caught.value.status, route.call_count) == (True, 502, 2)


async def test_tool_calls_without_index_are_told_apart_by_id(
    network: respx.MockRouter, llm: OpenAICompatibleLLM
) -> None:
    # Some older local servers omit `index`; a new id then means a new call.
    def whole_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
        fragment = {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        return chunk({"tool_calls": [fragment]})

    events = [
        whole_call("call_1", "route_book", '{"party_size": 2}'),
        whole_call("call_2", "route_faq", "{}"),
        chunk({}, finish_reason="tool_calls"),
    ]
    network.post("/chat/completions").mock(return_value=sse_response(events))

    final = (await collect(llm.stream(HELLO, functions=[BOOK])))[-1]

    assert [(call.id, call.name) for call in final.tool_calls] == [
        ("call_1", "route_book"),
        ("call_2", "route_faq"),
    ]


async def test_a_consumer_may_stop_early(
    network: respx.MockRouter, llm: OpenAICompatibleLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Barge-in: the voice pipeline drops the rest of a reply; the response must be released
    # now, not whenever the garbage collector gets to it.
    network.post("/chat/completions").mock(return_value=sse_response(TEXT_EVENTS))
    closed: list[httpx.Response] = []
    real_aclose = httpx.Response.aclose

    async def recording_aclose(response: httpx.Response) -> None:
        closed.append(response)
        await real_aclose(response)

    monkeypatch.setattr(httpx.Response, "aclose", recording_aclose)

    async with contextlib.aclosing(llm.stream(HELLO)) as stream:
        first = await anext(stream)
        assert not closed

    assert first.text == "Hello"
    assert closed
