"""An answer completes the waiting collect node exactly when the engine would accept it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine_support import Clock, compiled, luigis
from voxflow.engine.completeness import answer_completes
from voxflow.engine.interpreter import Engine
from voxflow.engine.state import State

LUIGIS = compiled(luigis())


def clinic_like() -> dict[str, Any]:
    """Luigi's, with a confirmed yes/no question and an enum."""
    document = luigis()
    document["variables"]["agreed"] = {"type": "boolean"}
    document["variables"]["seating"] = {
        "type": "enum",
        "choices": {"inside": ["indoors"], "terrace": ["outside"]},
    }
    document["nodes"].append(
        {"id": "ask_seating", "type": "collect", "variable": "seating", "prompt": "Where?"}
        | {"next": "ask_agreed"}
    )
    document["nodes"].append(
        {"id": "ask_agreed", "type": "collect", "variable": "agreed", "prompt": "Agreed?"}
        | {"confirm": True, "next": "bye"}
    )
    return document


CONFIRMING = compiled(clinic_like())


def waiting_at(node_id: str, clock: Clock, **fields: Any) -> State:
    return State(version="ver_test", node_id=node_id, started_at=clock(), **fields)


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("four", True),
        ("a table for four people please", True),
        ("Four.", True),
        ("twelve", True),
        ("thirteen", False),  # validate: 1 to 12
        ("zero", False),
        ("four or five", False),
        ("I would like to book a table for", False),
        ("", False),
        ("um", False),
    ],
)
def test_a_party_size_completes_only_when_it_parses_and_validates(
    text: str, complete: bool, clock: Clock
) -> None:
    state = waiting_at("ask_party", clock)
    assert answer_completes(LUIGIS, state, text, now=clock()) is complete


def test_a_date_completes_the_day_question(clock: Clock) -> None:
    state = waiting_at("ask_day", clock)
    assert answer_completes(LUIGIS, state, "tomorrow", now=clock())
    assert not answer_completes(LUIGIS, state, "hmm let me think", now=clock())


def test_free_text_never_completes_a_name_question(clock: Clock) -> None:
    state = waiting_at("ask_name", clock)
    assert not answer_completes(LUIGIS, state, "my name is", now=clock())
    assert not answer_completes(LUIGIS, state, "Ana", now=clock())


def test_nodes_other_than_collect_never_complete(clock: Clock) -> None:
    assert not answer_completes(LUIGIS, waiting_at("intent", clock), "yes", now=clock())
    assert not answer_completes(LUIGIS, waiting_at(None, clock), "four", now=clock())  # type: ignore[arg-type]
    ended = waiting_at("ask_party", clock, outcome="completed")
    assert not answer_completes(LUIGIS, ended, "four", now=clock())


def test_an_enum_completes_with_one_choice(clock: Clock) -> None:
    state = waiting_at("ask_seating", clock)
    assert answer_completes(CONFIRMING, state, "outside please", now=clock())
    assert not answer_completes(CONFIRMING, state, "inside or outside", now=clock())


def test_a_pending_confirmation_completes_with_a_clear_yes_or_no(clock: Clock) -> None:
    state = waiting_at("ask_agreed", clock, pending=True)
    assert answer_completes(CONFIRMING, state, "yes that's right", now=clock())
    assert answer_completes(CONFIRMING, state, "no", now=clock())
    assert not answer_completes(CONFIRMING, state, "yeah no", now=clock())


WORDS = st.sampled_from(
    [
        *("four", "4", "twelve", "twenty", "people", "a", "table", "for", "or", "five"),
        *("please", "um", "zero", "minus", "two", "dozen", "half", "and", "no", "yes"),
        "talk to a person",
    ]
)


@settings(max_examples=150, deadline=None)
@given(words=st.lists(WORDS, max_size=6))
def test_a_complete_answer_is_one_the_engine_accepts_at_once(words: list[str]) -> None:
    clock = Clock()
    text = " ".join(words)
    engine = Engine(LUIGIS, clock=clock)
    state = waiting_at("ask_party", clock)
    complete = answer_completes(LUIGIS, state, text, now=clock())
    asyncio.run(engine.handle_user_turn(state, text))
    if complete:
        assert state.node_id != "ask_party"
        assert state.turns == 0
