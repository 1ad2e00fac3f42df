"""The engine offline: Luigi's bookings walked turn by turn, state round trips, failures."""

from __future__ import annotations

from typing import Any

import pytest

from engine_support import Clock, StubTools, engine_for, luigis, of_type, said
from voxflow.engine.events import End, EnterNode, RuntimeIssue, SetVariable, ToolCall, Transfer
from voxflow.engine.interpreter import Engine
from voxflow.engine.state import State


async def talk(engine: Engine, state: State, *lines: str) -> list[Any]:
    events: list[Any] = []
    for line in lines:
        events = await engine.handle_user_turn(state, line)
    return events


class TestLuigisOffline:
    async def test_books_a_table_for_four(self, clock: Clock) -> None:
        engine = engine_for(luigis(), clock)

        state, events = await engine.start()
        assert "book a table" in said(events).lower()
        assert state.node_id == "intent"

        events = await engine.handle_user_turn(state, "yes please")
        assert state.node_id == "ask_party"
        assert "how many" in said(events).lower()

        events = await engine.handle_user_turn(state, "there will be four of us")
        assert state.variables["party_size"] == 4
        assert SetVariable(name="party_size", value=4) in events
        assert state.node_id == "ask_day"

        await engine.handle_user_turn(state, "tomorrow")
        assert state.variables["day"] == "2026-11-27"

        events = await engine.handle_user_turn(state, "Ana")
        assert said(events) == "Thanks Ana, see you soon!"
        assert of_type(events, End) == [End(outcome="completed")]
        assert state.ended
        assert state.node_id is None

    async def test_the_hours_question_is_answered_and_the_call_ends(self, clock: Clock) -> None:
        engine = engine_for(luigis(), clock)
        state, _ = await engine.start()

        events = await engine.handle_user_turn(state, "what are your opening hours")

        assert "open 5 to 11" in said(events)
        assert [e.id for e in of_type(events, EnterNode)] == ["hours", "bye"]
        assert state.outcome == "completed"

    async def test_an_invalid_party_size_is_asked_again_then_accepted(self, clock: Clock) -> None:
        engine = engine_for(luigis(), clock)
        state, _ = await engine.start()
        await engine.handle_user_turn(state, "book a table")

        events = await engine.handle_user_turn(state, "we are twenty")
        assert "between 1 and 12" in said(events)
        assert state.node_id == "ask_party"
        assert "party_size" not in _set(state)

        await engine.handle_user_turn(state, "ok then six")
        assert state.variables["party_size"] == 6
        assert state.node_id == "ask_day"

    async def test_a_large_party_is_transferred(self, clock: Clock) -> None:
        engine = engine_for(luigis(), clock)
        state, _ = await engine.start()

        events = await talk(engine, state, "a reservation please", "ten")

        assert of_type(events, Transfer) == [Transfer(target="sip:events@luigis.example")]
        assert state.outcome == "transferred"

    async def test_unusable_answers_lead_to_on_fail_after_the_retries(self, clock: Clock) -> None:
        engine = engine_for(luigis(), clock)
        state, _ = await engine.start()
        await engine.handle_user_turn(state, "yes")

        first = await engine.handle_user_turn(state, "hmm let me think")
        second = await engine.handle_user_turn(state, "no idea")
        third = await engine.handle_user_turn(state, "blue")

        assert "didn't catch" in said(first)
        assert "how many" in said(first).lower()
        assert state.outcome == "transferred"
        assert "didn't catch" in said(second)
        assert [e.id for e in of_type(third, EnterNode)] == ["human"]

    async def test_no_matching_route_reprompts_until_max_turns_then_falls_back(
        self, clock: Clock
    ) -> None:
        engine = engine_for(luigis(), clock)
        state, _ = await engine.start()

        first = await engine.handle_user_turn(state, "the weather is nice")
        await engine.handle_user_turn(state, "purple elephants")
        last = await engine.handle_user_turn(state, "quantum physics")

        assert "didn't get that" in said(first)
        assert state.node_id is None
        assert of_type(last, Transfer)[0].target == "sip:desk@luigis.example"

    async def test_a_global_route_leaves_from_anywhere(self, clock: Clock) -> None:
        document = luigis()
        document["settings"]["global_routes"] = [
            {"to": "human", "intent": "human", "examples": ["talk to a person", "a human"]}
        ]
        engine = engine_for(document, clock)
        state, _ = await engine.start()
        await talk(engine, state, "yes", "4")
        assert state.node_id == "ask_day"

        events = await engine.handle_user_turn(state, "can I talk to a person")

        assert of_type(events, Transfer)[0].target == "sip:desk@luigis.example"


class TestState:
    async def test_a_call_resumes_from_its_json_in_another_engine(self, clock: Clock) -> None:
        first = engine_for(luigis(), clock)
        state, _ = await first.start()
        await talk(first, state, "yes", "4")
        stored = state.model_dump_json()

        second = engine_for(luigis(), clock)
        resumed = State.model_validate_json(stored)
        events = await talk(second, resumed, "tomorrow", "Ana")

        assert resumed == State.model_validate_json(resumed.model_dump_json())
        assert said(events) == "Thanks Ana, see you soon!"

    async def test_a_turn_after_the_end_does_nothing(self, clock: Clock) -> None:
        engine = engine_for(luigis(), clock)
        state, _ = await engine.start()
        await engine.handle_user_turn(state, "opening hours")

        assert await engine.handle_user_turn(state, "hello?") == []

    async def test_hanging_up_ends_the_call_abandoned(self, clock: Clock) -> None:
        engine = engine_for(luigis(), clock)
        state, _ = await engine.start()

        events = engine.end(state, "abandoned", "caller hung up")

        assert events == [End(outcome="abandoned", reason="caller hung up")]
        assert engine.end(state, "abandoned") == []

    async def test_a_call_past_max_duration_ends_with_timeout(self, clock: Clock) -> None:
        document = luigis()
        document["settings"]["max_duration_s"] = 60
        engine = engine_for(document, clock)
        state, _ = await engine.start()

        clock.advance(61)
        events = await engine.handle_user_turn(state, "yes")

        assert of_type(events, End) == [End(outcome="timeout", reason=_TIMEOUT)]

    async def test_start_refuses_undeclared_variables(self, clock: Clock) -> None:
        engine = engine_for(luigis(), clock)

        with pytest.raises(ValueError, match="nope"):
            await engine.start({"nope": 1})


_TIMEOUT = "the call reached settings.max_duration_s"


def _set(state: State) -> set[str]:
    return {name for name, value in state.variables.items() if value is not None}


def _document(*nodes: dict[str, Any], **variables: Any) -> dict[str, Any]:
    return {
        "schema": "voxflow/v1",
        "name": "test",
        "variables": variables,
        "start": nodes[0]["id"],
        "nodes": list(nodes),
    }


class TestRuntimeErrors:
    async def test_a_template_error_follows_on_error(self, clock: Clock) -> None:
        document = _document(
            {"id": "a", "type": "say", "text": "{{ 1 / 0 }}", "next": "b", "on_error": "oops"},
            {"id": "b", "type": "end", "text": "fine"},
            {"id": "oops", "type": "end", "text": "sorry", "outcome": "failed"},
        )
        state, events = await engine_for(document, clock).start()

        issues = of_type(events, RuntimeIssue)
        assert [(i.node_id, i.code) for i in issues] == [("a", "template_error")]
        assert said(events) == "sorry"
        assert state.outcome == "failed"

    async def test_a_condition_error_without_on_error_fails_the_call(self, clock: Clock) -> None:
        document = _document(
            {
                "id": "a",
                "type": "branch",
                "branches": [{"when": "n / 0 > 1", "to": "b"}],
                "else": "b",
            },
            {"id": "b", "type": "end"},
            n={"type": "integer", "default": 3},
        )
        state, events = await engine_for(document, clock).start()

        assert of_type(events, RuntimeIssue)[0].code == "condition_error"
        assert state.outcome == "failed"

    async def test_automatic_nodes_looping_forever_are_stopped(self, clock: Clock) -> None:
        document = _document(
            {"id": "a", "type": "say", "text": "again", "next": "b"},
            {"id": "b", "type": "say", "text": "and again", "next": "a"},
        )
        state, events = await engine_for(document, clock).start()

        assert state.outcome == "failed"
        assert of_type(events, RuntimeIssue)[-1].code == "loop"


class TestActions:
    def _document(self) -> dict[str, Any]:
        return _document(
            {
                "id": "ask",
                "type": "collect",
                "variable": "order_id",
                "prompt": "Order number?",
                "next": "look",
            },
            {
                "id": "look",
                "type": "action",
                "tool": "http.request",
                "args": {"url": "https://shop.example.com/orders/{{ order_id }}"},
                "result": "order",
                "next": "tell",
                "on_error": "sorry",
            },
            {"id": "tell", "type": "end", "text": "It is {{ order.body.state }}."},
            {"id": "sorry", "type": "end", "text": "I cannot look it up now.", "outcome": "failed"},
            order_id={"type": "integer"},
            order={"type": "object"},
        )

    async def test_a_tool_result_is_stored_and_used(self, clock: Clock) -> None:
        tools = StubTools({"http.request": {"status": 200, "body": {"state": "shipped"}}})
        engine = engine_for(self._document(), clock, tools=tools)
        state, _ = await engine.start()

        events = await engine.handle_user_turn(state, "it's 4217")

        assert tools.calls == [("http.request", {"url": "https://shop.example.com/orders/4217"})]
        call = of_type(events, ToolCall)[0]
        assert call.result == {"status": 200, "body": {"state": "shipped"}}
        assert call.error is None
        assert said(events) == "It is shipped."

    async def test_a_failing_tool_takes_on_error(self, clock: Clock) -> None:
        tools = StubTools({"http.request": RuntimeError("connection refused")})
        engine = engine_for(self._document(), clock, tools=tools)
        state, _ = await engine.start()

        events = await engine.handle_user_turn(state, "4217")

        assert of_type(events, ToolCall)[0].error == "connection refused"
        assert said(events) == "I cannot look it up now."
        assert state.outcome == "failed"
