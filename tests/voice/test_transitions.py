"""Transitions never stall or go silent: lines play as they are decided, barge-ins leave the
flow consistent, and a model that answers nothing usable does not freeze the call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx
import yaml
from livekit.agents import AgentSession, StopResponse, llm

from support import Deployed, OrgHandle, deploy
from voice.conftest import call_record, start_voice_session
from voice.fakes import InstantTTS
from voxflow.core.context import AppContext
from voxflow.providers.llm import ScriptedLLM
from voxflow.sessions.live import LiveCall
from voxflow.sessions.repository import CallRepository
from voxflow.sessions.service import opening_line
from voxflow.voice.agent import TurnTimer, WorkflowAgent
from voxflow.voice.audio_transport import PacedAudioOutput, PushAudioInput
from voxflow.voice.call import tell_the_client

ORDERS = "https://orders.example.com/orders/42"
CHECKING = "Let me check that for you. It only takes a moment while I look it up."
WORKFLOW = {
    "schema": "voxflow/v1",
    "name": "Order status",
    "start": "greet",
    "variables": {"order": {"type": "object"}},
    "nodes": [
        {"id": "greet", "type": "say", "text": "Hello, this is the pharmacy.", "next": "menu"},
        {
            "id": "menu",
            "type": "conversation",
            "prompt": "Find out what the caller needs.",
            "routes": [
                {"to": "checking", "examples": ["check my order", "where is my order"]},
                {"to": "bye", "examples": ["no thanks", "that's all"]},
            ],
        },
        {"id": "checking", "type": "say", "text": CHECKING, "next": "lookup"},
        {
            "id": "lookup",
            "type": "action",
            "tool": "http.request",
            "args": {"url": ORDERS},
            "result": "order",
            "next": "found",
            "on_error": "found",
        },
        {
            "id": "found",
            "type": "say",
            "text": "Your order is ready. Anything else?",
            "next": "more",
        },
        {
            "id": "more",
            "type": "conversation",
            "prompt": "Ask if the caller needs anything else.",
            "routes": [
                {"to": "bye", "examples": ["no thanks", "that's all"]},
                {"to": "checking", "examples": ["check my order"]},
            ],
        },
        {"id": "bye", "type": "end", "text": "Goodbye!"},
    ],
}


@pytest.fixture
async def orders_agent(client: httpx.AsyncClient, org: OrgHandle) -> Deployed:
    return await deploy(client, org, yaml.safe_dump(WORKFLOW).encode(), name="orders")


@dataclass
class Line:
    """A voice call on a roomless AgentSession with an instant TTS and real-time playback."""

    agent: WorkflowAgent
    session: AgentSession[None]
    output: PacedAudioOutput
    tts: InstantTTS
    sent: list[dict[str, Any]] = field(default_factory=list)
    audio: list[tuple[float, int]] = field(default_factory=list)  # (time, bytes)

    async def say(self, text: str) -> None:
        """The caller's final transcript, as livekit hands it to the agent."""
        with pytest.raises(StopResponse):
            await self.agent.on_user_turn_completed(
                llm.ChatContext(), llm.ChatMessage(role="user", content=[text])
            )

    async def until(self, check: Any, within: float = 10.0) -> None:
        # Polls: the audio and the fakes' lines change without an event to wait on.
        try:
            async with asyncio.timeout(within):
                while not check():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise AssertionError(f"timed out; said {self.tts.lines}, sent {self.sent}") from None


@contextlib.asynccontextmanager
async def voice_line(
    client: httpx.AsyncClient,
    context: AppContext,
    deployed: Deployed,
    *,
    audio_s: float = 0.2,
) -> AsyncIterator[Line]:
    started = await start_voice_session(client, deployed)
    async with context.sessionmaker() as db:
        call = await CallRepository(db).get(deployed.org.id, started["session_id"])
    assert call is not None
    fake_tts = InstantTTS(audio_s=audio_s)
    session: AgentSession[None] = AgentSession(
        tts=fake_tts, vad=None, turn_handling={"turn_detection": "manual"}, user_away_timeout=None
    )
    holder: list[Line] = []
    loop = asyncio.get_running_loop()

    async def send_audio(data: bytes) -> None:
        holder[0].audio.append((loop.time(), len(data)))

    async def on_clear() -> None:
        holder[0].sent.append({"type": "clear"})

    async def send(message: dict[str, Any]) -> None:
        holder[0].sent.append(message)

    output = PacedAudioOutput(send_audio, sample_rate=24000, on_clear=on_clear, lead_s=0.1)
    output.start()
    session.input.audio = PushAudioInput()
    session.output.audio = output
    live = await LiveCall.open(context, call)
    timer = TurnTimer(lambda seq, timings: None)
    greeting = await opening_line(context, call)
    transfer = tell_the_client(send)
    agent = WorkflowAgent(live, send=send, greeting=greeting, timer=timer, transfer=transfer)
    holder.append(Line(agent, session, output, fake_tts))
    await session.start(agent, record=False)
    try:
        yield holder[0]
    finally:
        await session.aclose()
        await output.aclose()


async def test_a_transition_line_plays_while_the_next_node_still_works(
    client: httpx.AsyncClient, context: AppContext, orders_agent: Deployed
) -> None:
    release, looking_up = asyncio.Event(), asyncio.Event()
    heard_during_lookup: list[bool] = []

    async def slow_orders(request: httpx.Request) -> httpx.Response:
        looking_up.set()
        await release.wait()
        return httpx.Response(200, json={"status": "ready"})

    with respx.mock(assert_all_called=True) as orders:
        orders.get(ORDERS).mock(side_effect=slow_orders)
        async with voice_line(client, context, orders_agent) as line:
            await line.until(lambda: line.audio and line.session.current_speech is None)
            greeting_audio = len(line.audio)
            turn = asyncio.create_task(line.say("where is my order"))
            await asyncio.wait_for(looking_up.wait(), timeout=10)
            # The transition line reaches the caller while the tool call is still waiting.
            await line.until(lambda: len(line.audio) > greeting_audio)
            # All of it, its last sentence too, not held back until the turn is over.
            await line.until(lambda: "It only takes a moment while I look it up." in line.tts.lines)
            heard_during_lookup.append(not release.is_set())
            release.set()
            await turn
            await line.until(lambda: "Anything else?" in " ".join(line.tts.lines))

    assert heard_during_lookup == [True]
    nodes = [m["id"] for m in line.sent if m["type"] == "node"]
    assert nodes == ["checking", "lookup", "found", "more"]
    agent_lines = [m["text"] for m in line.sent if m["type"] == "transcript" and m["final"]]
    assert agent_lines[-2:] == [CHECKING, "Your order is ready. Anything else?"]


async def test_interrupting_a_transition_line_leaves_the_call_consistent_and_goes_on(
    client: httpx.AsyncClient, context: AppContext, orders_agent: Deployed
) -> None:
    with respx.mock() as orders:
        orders.get(ORDERS).respond(json={"status": "ready"})
        async with voice_line(client, context, orders_agent, audio_s=3.0) as line:
            await line.say("where is my order")
            await line.until(lambda: CHECKING in " ".join(line.tts.lines))
            playing = len(line.audio)
            await line.until(lambda: len(line.audio) > playing + 5)  # the caller hears it
            await line.session.interrupt()  # the caller talks over the transition line
            await line.until(lambda: {"type": "clear"} in line.sent)

            await line.say("no thanks")
            outcome = await asyncio.wait_for(line.agent.finished, timeout=15)

    assert outcome == "completed"
    assert "Goodbye!" in line.tts.lines
    call_id = line.agent.live.call.id
    record = await call_record(client, orders_agent, call_id)
    turns = [(t["role"], t["text"]) for t in record["transcript"]]
    assert turns == [
        ("agent", "Hello, this is the pharmacy."),
        ("user", "where is my order"),
        ("agent", f"{CHECKING} Your order is ready. Anything else?"),
        ("user", "no thanks"),
        ("agent", "Goodbye!"),
    ]
    assert record["outcome"] == "completed"


async def test_a_transfer_is_handed_to_the_client_after_its_line_has_played(
    client: httpx.AsyncClient, context: AppContext, luigis_agent: Deployed
) -> None:
    async with voice_line(client, context, luigis_agent) as line:
        await line.say("can I talk to a person")
        outcome = await asyncio.wait_for(line.agent.finished, timeout=15)

    assert outcome == "transferred"
    kinds = [m["type"] for m in line.sent]
    assert kinds[-2:] == ["transfer", "end"]
    assert line.sent[-2] == {
        "type": "transfer",
        "target": "sip:desk@luigis.example",
        "mode": "cold",
    }
    assert "Let me connect you with a colleague." in line.tts.lines


@pytest.mark.parametrize("reply", ["   ", '{"name": "go_book", "arguments": {}}'])
async def test_a_model_answering_nothing_usable_does_not_freeze_the_call(
    client: httpx.AsyncClient,
    context: AppContext,
    luigis_agent: Deployed,
    reply: str,
) -> None:
    context.extras["llm"] = ScriptedLLM.from_data([reply, {"call": "go_book"}])
    context.settings.llm_model = "scripted"
    try:
        async with voice_line(client, context, luigis_agent) as line:
            await line.say("hmm, let me think")
            await line.until(lambda: any("another way" in text for text in line.tts.lines))
            await line.say("a table please")
            await line.until(lambda: any("how many" in text.lower() for text in line.tts.lines))
    finally:
        context.settings.llm_model = None
        context.extras.pop("llm", None)

    spoken = " ".join(line.tts.lines)
    assert "go_book" not in spoken
    record = await call_record(client, luigis_agent, line.agent.live.call.id, ended=False)
    issues = [
        event
        for turn in record["transcript"]
        for event in turn.get("events") or []
        if event["type"] == "issue"
    ]
    assert [issue["code"] for issue in issues] == ["llm_unusable"]


async def test_a_models_reply_is_voiced_while_it_streams(
    client: httpx.AsyncClient, context: AppContext, luigis_agent: Deployed
) -> None:
    reply = "We have tables tonight and tomorrow. Shall I book one for you?"
    context.extras["llm"] = ScriptedLLM.from_data([reply])
    context.settings.llm_model = "scripted"
    try:
        async with voice_line(client, context, luigis_agent) as line:
            await line.say("do you have tables this week")
            await line.until(lambda: "Shall I book one for you?" in line.tts.lines)
    finally:
        context.settings.llm_model = None
        context.extras.pop("llm", None)

    agent_lines = [m for m in line.sent if m["type"] == "transcript" and m["role"] == "agent"]
    partials = [m["text"] for m in agent_lines if not m["final"]]
    assert len(partials) > 3  # the words as the model wrote them
    assert reply.startswith(partials[0])
    assert agent_lines[-1] == {"type": "transcript", "role": "agent", "text": reply, "final": True}
    # The sentences were voiced one by one, each as soon as it was complete.
    assert line.tts.lines[-2:] == [
        "We have tables tonight and tomorrow.",
        "Shall I book one for you?",
    ]
