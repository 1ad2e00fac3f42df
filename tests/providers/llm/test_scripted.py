from __future__ import annotations

import pytest
from pydantic import ValidationError

from voxflow.providers.llm import (
    LLM,
    ChatMessage,
    FunctionSpec,
    LLMChunk,
    LLMError,
    ScriptedLLM,
    ScriptedReply,
    ToolCallRequest,
)

BOOK = FunctionSpec(name="route_book")
FAQ = FunctionSpec(name="route_faq")
SYSTEM = ChatMessage(role="system", content="You are Luigi's.")


def user(text: str) -> list[ChatMessage]:
    return [SYSTEM, ChatMessage(role="user", content=text)]


async def test_replies_are_played_in_order() -> None:
    llm = ScriptedLLM(
        [ScriptedReply(text="Hello!"), ScriptedReply(call="route_book", arguments={"size": 2})]
    )

    first = await llm.complete(user("hi"), functions=[BOOK])
    second = await llm.complete(user("a table for two"), functions=[BOOK])

    assert (first.text, first.tool_calls) == ("Hello!", ())
    assert second.text == ""
    assert second.tool_calls == (
        ToolCallRequest(id="call_1", name="route_book", arguments={"size": 2}),
    )
    assert llm.unused_replies == ()


async def test_when_user_picks_the_first_unused_matching_reply() -> None:
    llm = ScriptedLLM(
        [
            ScriptedReply(call="route_book", when_user=r"\btable\b"),
            ScriptedReply(call="route_faq", when_user="open|hours"),
            ScriptedReply(text="Anything else?"),
        ]
    )

    faq = await llm.complete(user("When are you OPEN?"), functions=[BOOK, FAQ])
    fallback = await llm.complete(user("hmm"), functions=[BOOK, FAQ])
    book = await llm.complete(user("A TABLE please"), functions=[BOOK, FAQ])

    assert faq.tool_calls[0].name == "route_faq"
    assert fallback.text == "Anything else?"
    assert book.tool_calls[0].name == "route_book"


async def test_when_user_looks_at_the_last_user_message_only() -> None:
    llm = ScriptedLLM([ScriptedReply(text="Booking.", when_user="table")])
    history = [
        *user("a table please"),
        ChatMessage(role="assistant", content="For how many?"),
        ChatMessage(role="user", content="four"),
    ]

    with pytest.raises(LLMError, match="script exhausted"):
        await llm.complete(history)


async def test_exhausted_script_is_a_permanent_error() -> None:
    llm = ScriptedLLM([ScriptedReply(text="only once")])
    await llm.complete(user("hi"))

    with pytest.raises(LLMError, match="script exhausted") as caught:
        await llm.complete(user("hi again"))

    assert caught.value.retryable is False


async def test_a_call_to_a_function_not_offered_is_an_error() -> None:
    llm = ScriptedLLM([ScriptedReply(call="route_transfer")])

    with pytest.raises(LLMError, match="route_transfer") as caught:
        await llm.complete(user("hi"), functions=[BOOK])

    assert caught.value.retryable is False
    # The reply was not played, so the script's bookkeeping still shows it.
    assert [reply.call for reply in llm.unused_replies] == ["route_transfer"]


async def test_requests_record_messages_and_offered_functions() -> None:
    llm = ScriptedLLM([ScriptedReply(text="Hello!")])

    await llm.complete(user("hi"), functions=[BOOK, FAQ])

    assert len(llm.requests) == 1
    assert llm.requests[0].messages == tuple(user("hi"))
    assert llm.requests[0].function_names == ("route_book", "route_faq")


async def test_stream_yields_words_then_a_final_chunk_with_the_call() -> None:
    llm = ScriptedLLM([ScriptedReply(text="Sure, one moment.", call="route_book")])

    chunks = [chunk async for chunk in llm.stream(user("book"), functions=[BOOK])]

    assert [chunk.text for chunk in chunks[:-1]] == ["Sure, ", "one ", "moment."]
    assert "".join(chunk.text for chunk in chunks) == "Sure, one moment."
    assert chunks[-1] == LLMChunk(
        tool_calls=(ToolCallRequest(id="call_1", name="route_book"),), done=True
    )


async def test_from_data_reads_scenario_yaml_shapes() -> None:
    llm = ScriptedLLM.from_data(
        [
            "Welcome to Luigi's!",
            {"call": "route_book", "arguments": {"party_size": 4}, "when_user": "table"},
        ]
    )

    greeting = await llm.complete(user("hello"), functions=[BOOK])
    booking = await llm.complete(user("table for 4"), functions=[BOOK])

    assert greeting.text == "Welcome to Luigi's!"
    assert booking.tool_calls[0].arguments == {"party_size": 4}


@pytest.mark.parametrize(
    "bad",
    [
        {"txt": "typo in the key"},
        {"when_user": "only a condition"},
        {"text": "hi", "when_user": "(unclosed"},
        {"text": "hi", "arguments": {"a": 1}},
    ],
)
def test_from_data_rejects_malformed_replies(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ScriptedLLM.from_data([bad])


def test_scripted_llm_satisfies_the_llm_protocol() -> None:
    llm: LLM = ScriptedLLM([])
    assert llm.name == "scripted"
