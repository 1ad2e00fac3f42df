"""The engine with a language model: routes as functions, gated; extraction after parsing."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

from engine_support import Clock, engine_for, luigis, of_type, said
from voxflow.engine.events import RuntimeIssue, SetVariable
from voxflow.providers.llm import (
    ChatMessage,
    FunctionSpec,
    LLMChunk,
    LLMError,
    LLMResponse,
    ScriptedLLM,
)


def booking_with_requirement() -> dict[str, Any]:
    """Luigi's, where booking needs the party size known first (the model may fill it)."""
    document = luigis()
    intent = next(n for n in document["nodes"] if n["id"] == "intent")
    intent["routes"][0]["requires"] = ["party_size"]
    intent["routes"][0]["to"] = "ask_day"
    return document


class FailingLLM:
    name = "failing"

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        functions: Sequence[FunctionSpec] = (),
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> LLMResponse:
        raise LLMError("upstream 503 after one retry", retryable=True, status=503)

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        functions: Sequence[FunctionSpec] = (),
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> AsyncGenerator[LLMChunk, None]:
        raise LLMError("upstream 503 after one retry", retryable=True, status=503)
        yield LLMChunk()  # pragma: no cover (makes this an async generator)


async def test_the_models_choice_of_route_is_taken(clock: Clock) -> None:
    llm = ScriptedLLM.from_data([{"call": "go_hours"}])
    engine = engine_for(luigis(), clock, llm=llm)
    state, _ = await engine.start()

    events = await engine.handle_user_turn(state, "hmm, when could I come by?")

    assert "open 5 to 11" in said(events)
    offered = llm.requests[0].function_names
    assert {"go_book", "go_hours", "go_human"} <= set(offered)


async def test_a_route_whose_requirement_is_missing_is_refused_and_the_model_told(
    clock: Clock,
) -> None:
    llm = ScriptedLLM.from_data([{"call": "go_book"}, {"text": "Sure! For how many people?"}])
    engine = engine_for(booking_with_requirement(), clock, llm=llm)
    state, _ = await engine.start()

    events = await engine.handle_user_turn(state, "I'd like a table")

    assert state.node_id == "intent"
    assert said(events) == "Sure! For how many people?"
    told = llm.requests[1].messages[-1]
    assert told.role == "tool"
    assert told.content is not None
    assert "party_size" in told.content


async def test_the_model_can_fill_a_required_variable_then_take_the_route(
    clock: Clock,
) -> None:
    llm = ScriptedLLM.from_data(
        [{"call": "set_party_size", "arguments": {"value": "four"}}, {"call": "go_book"}]
    )
    engine = engine_for(booking_with_requirement(), clock, llm=llm)
    state, _ = await engine.start()

    events = await engine.handle_user_turn(state, "a table for four")

    assert SetVariable(name="party_size", value=4) in events
    assert state.node_id == "ask_day"


async def test_a_collect_asks_the_model_only_when_parsing_failed(clock: Clock) -> None:
    llm = ScriptedLLM.from_data(
        [
            {"call": "go_book"},
            {"call": "set_party_size", "arguments": {"value": 5}},
        ]
    )
    engine = engine_for(luigis(), clock, llm=llm)
    state, _ = await engine.start()
    await engine.handle_user_turn(state, "book please")

    await engine.handle_user_turn(state, "4")  # parsed: the model is not asked
    assert len(llm.requests) == 1
    assert state.variables["party_size"] == 4


async def test_extraction_fills_what_the_parser_could_not(clock: Clock) -> None:
    llm = ScriptedLLM.from_data(
        [
            {"call": "go_book"},
            {"call": "set_party_size", "arguments": {"value": 5}},
        ]
    )
    engine = engine_for(luigis(), clock, llm=llm)
    state, _ = await engine.start()
    await engine.handle_user_turn(state, "book please")

    await engine.handle_user_turn(state, "the whole family, my wife and the kids")

    assert state.variables["party_size"] == 5
    assert llm.requests[1].function_names == ("set_party_size",)


async def test_a_failing_model_is_recorded_and_the_caller_asked_again(clock: Clock) -> None:
    engine = engine_for(luigis(), clock, llm=FailingLLM())
    state, _ = await engine.start()

    events = await engine.handle_user_turn(state, "hello")

    issue = of_type(events, RuntimeIssue)[0]
    assert issue.code == "llm_error"
    assert "503" in issue.message
    assert state.outcome is None
    assert state.node_id == "intent"
    assert "trouble" in said(events)


async def test_a_model_that_keeps_failing_leads_to_the_nodes_fallback(clock: Clock) -> None:
    engine = engine_for(luigis(), clock, llm=FailingLLM())
    state, _ = await engine.start()

    for _ in range(3):  # intent's max_turns
        events = await engine.handle_user_turn(state, "hello")

    assert state.outcome == "transferred"  # intent's fallback: human
    assert "colleague" in said(events)
