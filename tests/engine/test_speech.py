"""A voice turn hears each line as the engine decides it, and a model reply as it streams."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine_support import Clock, engine_for, luigis, of_type, said
from voxflow.engine.events import RuntimeIssue
from voxflow.engine.nodes.conversation import _is_speech, _StreamedLine
from voxflow.providers.llm import ScriptedLLM


class HeardSpeech:
    """What a caller would hear, piece by piece, in order."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.lines: list[str] = []
        self._partial: list[str] = []
        self.nodes: list[str] = []

    def entered(self, node_id: str) -> None:
        self.nodes.append(node_id)

    def say(self, text: str) -> None:
        self.pieces.append(text)
        self.lines.append(text)

    def say_partial(self, text: str) -> None:
        self.pieces.append(text)
        self._partial.append(text)

    def end_partial(self) -> None:
        self.lines.append("".join(self._partial))
        self._partial = []

    def close(self) -> None:
        pass


async def test_lines_of_every_node_entered_reach_the_speech_in_order(clock: Clock) -> None:
    engine = engine_for(luigis(), clock)
    state, _ = await engine.start()
    heard = HeardSpeech()

    events = await engine.handle_user_turn(state, "when are you open", speech=heard)

    assert heard.lines == ["We're open 5 to 11 pm every day.", "Thanks, see you soon!"]
    assert heard.nodes == ["hours", "bye"]
    assert " ".join(heard.lines) == said(events)


async def test_a_models_reply_is_streamed_piece_by_piece(clock: Clock) -> None:
    llm = ScriptedLLM.from_data(["We have tables tonight and tomorrow. Shall I book one?"])
    engine = engine_for(luigis(), clock, llm=llm)
    state, _ = await engine.start()
    heard = HeardSpeech()

    events = await engine.handle_user_turn(state, "any tables?", speech=heard)

    assert len(heard.pieces) > 3  # word by word, not one line at the end
    assert heard.lines == ["We have tables tonight and tomorrow. Shall I book one?"]
    assert said(events) == heard.lines[0]
    assert state.history[-1].text == heard.lines[0]


async def test_text_before_a_route_call_is_heard_once_then_the_next_node(clock: Clock) -> None:
    llm = ScriptedLLM.from_data([{"text": "Sure thing.", "call": "go_book"}])
    engine = engine_for(luigis(), clock, llm=llm)
    state, _ = await engine.start()
    heard = HeardSpeech()

    events = await engine.handle_user_turn(state, "a table please", speech=heard)

    assert heard.lines == ["Sure thing.", "For how many people?"]
    assert said(events) == "Sure thing. For how many people?"


@pytest.mark.parametrize(
    "reply", ["   ", "\n\n", "go_book()", '{"name": "go_book"}', "functions.go_book({})"]
)
async def test_a_reply_that_is_not_speech_asks_again_instead_of_going_silent(
    clock: Clock, reply: str
) -> None:
    llm = ScriptedLLM.from_data([reply])
    engine = engine_for(luigis(), clock, llm=llm)
    state, _ = await engine.start()
    heard = HeardSpeech()

    events = await engine.handle_user_turn(state, "hmm", speech=heard)

    assert heard.lines == ["Sorry, I didn't get that. Could you say it another way?"]
    assert of_type(events, RuntimeIssue)[0].code == "llm_unusable"
    assert state.node_id == "intent"
    assert state.outcome is None


async def test_the_same_reply_without_speech_is_checked_the_same_way(clock: Clock) -> None:
    engine = engine_for(luigis(), clock, llm=ScriptedLLM.from_data(["go_book()"]))
    state, _ = await engine.start()

    events = await engine.handle_user_turn(state, "hmm")

    assert "go_book" not in said(events)
    assert "another way" in said(events)


async def test_unusable_replies_lead_to_the_fallback_after_max_turns(clock: Clock) -> None:
    engine = engine_for(luigis(), clock, llm=ScriptedLLM.from_data([" "] * 3))
    state, _ = await engine.start()

    for _ in range(3):
        events = await engine.handle_user_turn(state, "hmm", speech=HeardSpeech())

    assert state.outcome == "transferred"
    assert "colleague" in said(events)


def test_sentences_are_speech_and_a_parenthesis_after_a_plain_word_is_fine() -> None:
    assert _is_speech("Sure (we open at five).", ["go_book"])
    assert _is_speech("Book a table?", ["go_book"])
    assert not _is_speech("go_book ()", ["go_book"])
    assert not _is_speech("<tool_call>go_book</tool_call>", ["go_book"])


@given(st.text())
def test_streaming_in_any_pieces_gives_the_same_verdict_as_the_whole_text(text: str) -> None:
    heard = HeardSpeech()
    line = _StreamedLine(heard, ["go_book", "go_hours"])
    for index in range(0, len(text), 3):
        line.feed(text[index : index + 3])
    line.close()

    assert line.opened == _is_speech(text, ["go_book", "go_hours"])
    if line.opened:
        assert "".join(heard.pieces) == text.lstrip()
