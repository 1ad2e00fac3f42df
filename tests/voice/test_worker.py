"""The LiveKit worker's job, from its metadata to the first spoken line.

`serve_job` is the job entrypoint without the room: the same code with the room's audio I/O
swapped for a push-fed input and a paced output, instant fake TTS and no STT traffic.
"""

from __future__ import annotations

import asyncio
import pickle
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from livekit import rtc
from livekit.agents import AgentServer, JobContext, stt
from typer.testing import CliRunner

from support import Deployed, OrgHandle
from voice.fakes import InstantTTS
from voxflow.cli import app as cli_app
from voxflow.core.context import AppContext
from voxflow.core.settings import Settings
from voxflow.orgs.auth import AuthSubject
from voxflow.orgs.models import Role
from voxflow.sessions import service
from voxflow.sessions.models import Call
from voxflow.sessions.repository import CallRepository
from voxflow.sessions.schemas import SessionCreate
from voxflow.voice.audio_transport import PacedAudioOutput, PushAudioInput
from voxflow.voice.livekit_api import AGENT_NAME, DispatchMetadata, LiveKitConfig
from voxflow.voice.offline import VoiceModels
from voxflow.voice.whisper import WhisperSTT
from voxflow.voice.worker import JobRefused, build_server, calls_load, entrypoint, serve_job

GREETING = "Hi, this is Luigi's."


@pytest.fixture(scope="module")
def models() -> VoiceModels:
    from livekit.plugins import silero

    vad = silero.VAD.load(min_silence_duration=0.4)
    return VoiceModels(whisper=None, hibari=None, vad=vad, tts_lock=threading.Lock())


async def new_call(context: AppContext, deployed: Deployed, transport: str = "livekit") -> Call:
    """A voice session as POST /v1/sessions starts it (the room and dispatch left out)."""
    auth = AuthSubject(org_id=deployed.org.id, role=Role.member)
    body = SessionCreate.model_validate(
        {"agent_id": deployed.agent_id, "mode": "voice", "transport": transport}
    )
    started = await service.start_session(context, auth, body)
    return started.call


def metadata_of(call: Call, **changes: Any) -> str:
    """The dispatch metadata POST /v1/sessions gives LiveKit for this call."""
    fields: dict[str, Any] = {
        "session_id": call.id,
        "org_id": call.org_id,
        "agent_id": call.agent_id,
        "version": call.version_number,
    }
    return DispatchMetadata(**{**fields, **changes}).model_dump_json()


async def stored(context: AppContext, call: Call) -> Call:
    async with context.sessionmaker() as session:
        found = await CallRepository(session).get(call.org_id, call.id)
    assert found is not None
    return found


class FakeCaller:
    """The caller's side: JSON messages and the agent's audio."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.audio = bytearray()
        self.greeted = asyncio.Event()
        self.output = PacedAudioOutput(self.play, sample_rate=24000, lead_s=1.0)

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    async def play(self, data: bytes) -> None:
        self.audio += data
        if any(m["type"] == "transcript" and m["role"] == "agent" for m in self.messages):
            self.greeted.set()


@pytest.fixture
async def caller() -> AsyncIterator[FakeCaller]:
    fake = FakeCaller()
    fake.output.start()
    yield fake
    await fake.output.aclose()


async def test_a_dispatched_job_speaks_the_greeting_then_ends_when_the_caller_leaves(
    context: AppContext, luigis_agent: Deployed, models: VoiceModels, caller: FakeCaller
) -> None:
    call = await new_call(context, luigis_agent)
    fake_tts, stop = InstantTTS(), asyncio.Event()
    job = asyncio.create_task(
        serve_job(
            context,
            metadata_of(call),
            send=caller.send,
            audio_input=PushAudioInput(),
            audio_output=caller.output,
            stop=stop,
            models=models,
            stt_override=stt.StreamAdapter(stt=WhisperSTT(None), vad=models.vad),
            tts_override=fake_tts,
        )
    )
    await asyncio.wait_for(caller.greeted.wait(), timeout=10)
    assert not job.done()
    stop.set()  # what the room's close on the caller's departure does
    assert await asyncio.wait_for(job, timeout=10) == "abandoned"

    first = next(m for m in caller.messages if m["type"] == "transcript")
    assert first["role"] == "agent"
    assert first["text"].startswith(GREETING)
    assert fake_tts.lines[0] == GREETING
    assert len(caller.audio) > 0
    assert caller.messages[-1] == {"type": "end", "outcome": "abandoned"}
    assert (await stored(context, call)).outcome == "abandoned"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "the job has no metadata"),
        ("", "the job has no metadata"),
        ("not json", "bad job metadata"),
        ('{"session_id": "call_x"}', "bad job metadata: org_id: Field required"),
        ('{"session_id": "c", "org_id": "o", "agent_id": "a", "version": "x"}', "version"),
    ],
)
async def test_bad_metadata_is_refused_with_one_clear_line(
    context: AppContext, raw: str | None, reason: str
) -> None:
    connected: list[Call] = []

    async def connect(call: Call) -> rtc.Room:
        connected.append(call)
        raise AssertionError("a refused job must not join the room")

    with pytest.raises(JobRefused) as refused:
        await serve_job(context, raw, send=_ignore, connect=connect)
    assert reason in str(refused.value)
    assert "\n" not in str(refused.value)
    assert not connected


async def test_a_call_of_another_org_or_unknown_or_not_livekit_is_refused(
    context: AppContext, luigis_agent: Deployed, other_org: OrgHandle
) -> None:
    call = await new_call(context, luigis_agent)
    websocket_call = await new_call(context, luigis_agent, transport="websocket")
    cases = {
        metadata_of(call, org_id=other_org.id): f"no session {call.id} in org {other_org.id}",
        metadata_of(call, session_id="call_unknown"): "no session call_unknown",
        metadata_of(call, agent_id="agent_other"): f"no session {call.id}",
        metadata_of(websocket_call): "is not a LiveKit voice session",
    }
    for raw, reason in cases.items():
        with pytest.raises(JobRefused, match=reason):
            await serve_job(context, raw, send=_ignore)
    assert (await stored(context, call)).outcome is None  # untouched

    await service.end_call(context, call.org_id, call.id, "abandoned", "test")
    with pytest.raises(JobRefused, match="has ended"):
        await serve_job(context, metadata_of(call), send=_ignore)


async def test_a_room_that_cannot_be_joined_fails_the_call(
    context: AppContext, luigis_agent: Deployed
) -> None:
    call = await new_call(context, luigis_agent)

    async def connect(_call: Call) -> rtc.Room:
        raise ConnectionError("LiveKit is down")

    with pytest.raises(ConnectionError):
        await serve_job(context, metadata_of(call), send=_ignore, connect=connect)
    assert (await stored(context, call)).outcome == "failed"


async def test_the_entrypoint_refuses_a_bad_job_and_shuts_it_down_without_crashing(
    context: AppContext,
) -> None:
    shutdowns: list[str] = []
    ctx = SimpleNamespace(
        proc=SimpleNamespace(userdata={"voxflow_context": context}),
        job=SimpleNamespace(id="AJ_test", metadata="{}"),
        add_shutdown_callback=lambda _callback: None,
        shutdown=lambda reason="": shutdowns.append(reason),
    )
    await entrypoint(cast(JobContext, ctx))
    assert len(shutdowns) == 1
    assert shutdowns[0].startswith("refused: bad job metadata")


def test_the_load_is_the_share_of_the_capacity_in_use() -> None:
    def server(jobs: int) -> AgentServer:
        return cast(AgentServer, SimpleNamespace(active_jobs=[object()] * jobs))

    assert calls_load(4, server(0)) == 0.0
    assert calls_load(4, server(2)) == 0.5
    assert calls_load(4, server(4)) == 1.0
    assert calls_load(4, server(6)) == 1.0


def test_the_server_takes_explicit_dispatches_to_voxflow_and_drains() -> None:
    settings = Settings(livekit_url="wss://lk.test", livekit_api_key="k", livekit_api_secret="s")
    config = LiveKitConfig.from_settings(settings)
    assert config is not None
    server = build_server(settings, config, capacity=3, drain_timeout=60, health_port=9181)
    # livekit keeps these private; they are what its worker registers and obeys.
    assert server._port == 9181
    assert server._agent_name == AGENT_NAME == "voxflow"
    assert (server._ws_url, server._api_key, server._api_secret) == ("wss://lk.test", "k", "s")
    assert (server._drain_timeout, server._load_threshold) == (60, 1.0)
    assert server.load_fnc is not None
    assert server.load_fnc(cast(AgentServer, SimpleNamespace(active_jobs=[1]))) == 1 / 3
    # Job processes get the settings pickled (forkserver).
    assert pickle.loads(pickle.dumps(server.setup_fnc)).args[0] == settings


def test_the_worker_command_refuses_without_livekit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("URL", "API_KEY", "API_SECRET"):
        monkeypatch.delenv(f"LIVEKIT_{name}", raising=False)
        monkeypatch.delenv(f"VOXFLOW_LIVEKIT_{name}", raising=False)
    ran = CliRunner().invoke(cli_app, ["worker"])
    assert ran.exit_code == 2, ran.output
    assert "LiveKit is not configured" in ran.output
    assert len(ran.output.strip().splitlines()) == 1


async def _ignore(_message: dict[str, Any]) -> None:
    pass
