"""Call recordings: the stereo WAV the recorder writes, the retention sweep, the API."""

from __future__ import annotations

import asyncio
import re
import wave
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from livekit import rtc
from livekit.agents.voice.io import AudioOutput, AudioOutputCapabilities, PlaybackFinishedEvent
from sqlalchemy import update

from support import Deployed, client_for, configured_app, deploy, new_org
from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.sessions.models import Call
from voxflow.voice.audio_transport import PacedAudioOutput, PushAudioInput
from voxflow.voice.call import run_call
from voxflow.voice.offline import shared_models
from voxflow.voice.recording import (
    CallRecorder,
    RecordingAudioInput,
    RecordingAudioOutput,
)
from voxflow.voice.retention import (
    RetentionLoop,
    recording_file,
    recording_relpath,
    sweep_expired_recordings,
)
from voxflow.voice.whisper import transcribe_pcm16

RATE = 16000
BOOK = "I would like to book a table"


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def tone_frames(freq: float, seconds: float, rate: int, amp: float = 0.5) -> list[rtc.AudioFrame]:
    """20 ms PCM16 mono frames of a sine."""
    n = int(seconds * rate)
    samples = (amp * 32767 * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.int16)
    step = rate // 50
    return [
        rtc.AudioFrame(samples[i : i + step].tobytes(), rate, 1, len(samples[i : i + step]))
        for i in range(0, n, step)
    ]


def read_stereo(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, RATE, 2)
        data = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
    return data[0::2].astype(np.float64), data[1::2].astype(np.float64)


def rms(samples: np.ndarray, start_s: float, end_s: float) -> float:
    part = samples[int(start_s * RATE) : int(end_s * RATE)]
    return float(np.sqrt(np.mean(part**2))) if len(part) else 0.0


class CapturingSink(AudioOutput):
    """An audio output that keeps what it gets and reports each segment played at flush."""

    def __init__(self) -> None:
        super().__init__(
            label="capturing", capabilities=AudioOutputCapabilities(pause=False), sample_rate=24000
        )
        self.frames: list[rtc.AudioFrame] = []
        self.cleared = 0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        self.frames.append(frame)

    def flush(self) -> None:
        super().flush()
        self.on_playback_finished(playback_position=1.0, interrupted=False)

    def clear_buffer(self) -> None:
        self.cleared += 1


@pytest.fixture
async def clock_recorder(tmp_path: Path) -> AsyncIterator[tuple[FakeClock, CallRecorder]]:
    clock = FakeClock()
    # No periodic flush: the test decides when audio is written.
    recorder = CallRecorder(tmp_path / "rec" / "call.wav", flush_interval_s=3600, clock=clock)
    await recorder.start()
    yield clock, recorder
    await recorder.aclose()


class TestRecorder:
    async def test_caller_left_agent_right_on_one_clock_with_silence_between(
        self, clock_recorder: tuple[FakeClock, CallRecorder]
    ) -> None:
        clock, recorder = clock_recorder
        for frame in tone_frames(300, 1.0, RATE):  # the caller speaks from 0 to 1 s
            clock.now += 0.02
            recorder.add_caller(frame)
        clock.now += 0.5
        for frame in tone_frames(1000, 1.0, 24000):  # the whole reply arrives at once at 1.5 s
            recorder.add_agent(frame)
        clock.now += 1.5  # it plays until 2.5 s; the call ends at 3 s
        await recorder.aclose()

        left, right = read_stereo(recorder.path)
        assert len(left) == 3 * RATE
        assert rms(left, 0.05, 0.95) > 5000
        assert rms(right, 0.05, 0.95) == 0
        assert rms(left, 1.05, 2.95) == 0
        assert rms(right, 1.6, 2.4) > 5000
        assert rms(right, 2.6, 3.0) == 0
        # The agent's channel is the 1 kHz tone, resampled from 24 kHz.
        played = right[int(1.6 * RATE) : int(2.4 * RATE)]
        assert np.argmax(np.abs(np.fft.rfft(played))) * RATE / len(played) == pytest.approx(1000)

    async def test_a_barge_in_drops_the_reply_that_never_played(
        self, clock_recorder: tuple[FakeClock, CallRecorder]
    ) -> None:
        clock, recorder = clock_recorder
        clock.now += 1.0
        for frame in tone_frames(1000, 3.0, 24000):  # 3 s queued at 1 s
            recorder.add_agent(frame)
        clock.now += 0.5
        recorder.agent_cleared()  # the caller spoke over it at 1.5 s
        clock.now += 1.5
        await recorder.aclose()

        _, right = read_stereo(recorder.path)
        assert len(right) == 3 * RATE
        assert rms(right, 1.1, 1.45) > 5000
        assert rms(right, 1.55, 3.0) == 0

    async def test_only_settled_audio_is_written_and_the_header_always_matches(
        self, clock_recorder: tuple[FakeClock, CallRecorder]
    ) -> None:
        clock, recorder = clock_recorder
        for frame in tone_frames(300, 2.0, RATE):
            clock.now += 0.02
            recorder.add_caller(frame)
        await recorder.flush()  # the last hold_s (0.5 s) stays in memory

        left, _ = read_stereo(recorder.path)
        assert len(left) == int(1.5 * RATE)
        assert recorder.written_s == pytest.approx(1.5)

    async def test_a_call_that_stops_abruptly_leaves_a_playable_file(self, tmp_path: Path) -> None:
        clock = FakeClock()
        recorder = CallRecorder(tmp_path / "crash.wav", flush_interval_s=3600, clock=clock)
        await recorder.start()
        for frame in tone_frames(300, 2.0, RATE):
            clock.now += 0.02
            recorder.add_caller(frame)
        await recorder.flush()
        for frame in tone_frames(300, 1.0, RATE):  # never written: the process "dies" here
            recorder.add_caller(frame)
        assert recorder._task is not None
        recorder._task.cancel()

        left, right = read_stereo(tmp_path / "crash.wav")
        assert len(left) == int(1.5 * RATE)
        assert rms(left, 0.1, 1.4) > 5000
        assert rms(right, 0, 1.5) == 0
        await recorder.aclose()
        await recorder.aclose()  # closing twice is fine

    async def test_a_file_cut_mid_block_still_reads(
        self, clock_recorder: tuple[FakeClock, CallRecorder]
    ) -> None:
        clock, recorder = clock_recorder
        for frame in tone_frames(300, 1.0, RATE):
            clock.now += 0.02
            recorder.add_caller(frame)
        await recorder.aclose()
        data = recorder.path.read_bytes()
        recorder.path.write_bytes(data[: len(data) - 1001])  # a disk that filled up

        with wave.open(str(recorder.path)) as wav:
            frames = wav.readframes(wav.getnframes())
        assert 0 < len(frames) < len(data) - 44

    async def test_a_file_that_cannot_be_created_means_no_recording_not_an_error(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "a-file").write_bytes(b"")
        assert await CallRecorder.open(tmp_path / "a-file" / "call.wav") is None

    async def test_nothing_is_recorded_before_start_or_after_close(self, tmp_path: Path) -> None:
        recorder = CallRecorder(tmp_path / "never.wav")
        recorder.add_caller(tone_frames(300, 0.02, RATE)[0])  # not started: ignored
        await recorder.aclose()
        assert not (tmp_path / "never.wav").exists()


class TestWrappers:
    async def test_the_input_passes_frames_through_and_records_them(
        self, clock_recorder: tuple[FakeClock, CallRecorder]
    ) -> None:
        clock, recorder = clock_recorder
        source = PushAudioInput(RATE)
        recording = RecordingAudioInput(source, recorder)
        sent = tone_frames(300, 0.1, RATE)
        for frame in sent:
            source.push_pcm16(bytes(frame.data))
        received = []
        for _ in sent:
            clock.now += 0.02
            received.append(await recording.__anext__())
        await recorder.aclose()

        assert [bytes(f.data) for f in received] == [bytes(f.data) for f in sent]
        left, _ = read_stereo(recorder.path)
        spoken = np.frombuffer(b"".join(bytes(f.data) for f in sent), np.int16)
        assert np.array_equal(left.astype(np.int16), spoken)  # the same samples, at 0 s

    async def test_the_output_passes_frames_and_events_through(
        self, clock_recorder: tuple[FakeClock, CallRecorder]
    ) -> None:
        clock, recorder = clock_recorder
        sink = CapturingSink()
        output = RecordingAudioOutput(sink, recorder)
        finished: list[PlaybackFinishedEvent] = []
        output.on("playback_finished", finished.append)
        frames = tone_frames(1000, 0.5, 24000)
        for frame in frames:
            await output.capture_frame(frame)
        output.flush()
        event = await output.wait_for_playout()
        clock.now += 1.0  # played out by now: a later clear drops nothing
        output.clear_buffer()
        await recorder.aclose()

        assert output.sample_rate == 24000
        assert [bytes(f.data) for f in sink.frames] == [bytes(f.data) for f in frames]
        assert len(finished) == 1
        assert event.playback_position == 1.0
        assert sink.cleared == 1
        _, right = read_stereo(recorder.path)
        assert rms(right, 0.05, 0.45) > 5000


# --- the API and the retention sweep (SQLite and PostgreSQL) ---


@pytest.fixture
async def recording_app(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, AppContext]]:
    """An app whose data dir is a temporary folder, keeping recordings 7 days."""
    async with (
        configured_app(database_url, data_dir=tmp_path / "data", recording_retention_days=7) as app,
        client_for(app) as client,
    ):
        yield client, app.state.context


async def recorded_agent(
    client: httpx.AsyncClient, context: AppContext, luigis_yaml: bytes
) -> Deployed:
    deployed = await deploy(client, await new_org(context), luigis_yaml)
    response = await client.patch(
        f"/v1/agents/{deployed.agent_id}", json={"record": True}, headers=deployed.org.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["record"] is True
    return deployed


async def start(client: httpx.AsyncClient, deployed: Deployed, mode: str = "voice") -> str:
    response = await client.post(
        "/v1/sessions",
        json={"agent_id": deployed.agent_id, "mode": mode},
        headers=deployed.org.headers,
    )
    assert response.status_code == 201, response.text
    call_id: str = response.json()["session_id"]
    return call_id


async def stored_path(context: AppContext, call_id: str) -> str | None:
    async with context.sessionmaker() as session:
        call = await session.get(Call, call_id)
        assert call is not None
        return call.recording_path


async def record_a_second(context: AppContext, relpath: str) -> Path:
    path = recording_file(context.settings, relpath)
    clock = FakeClock()
    recorder = CallRecorder(path, flush_interval_s=3600, clock=clock)
    await recorder.start()
    for frame in tone_frames(300, 1.0, RATE):
        clock.now += 0.02
        recorder.add_caller(frame)
    await recorder.aclose()
    return path


class TestApi:
    async def test_agents_do_not_record_unless_asked(
        self, client: httpx.AsyncClient, luigis_agent: Deployed
    ) -> None:
        response = await client.get(
            f"/v1/agents/{luigis_agent.agent_id}", headers=luigis_agent.org.headers
        )
        assert response.json()["record"] is False
        call_id = await start(client, luigis_agent)
        recording = await client.get(
            f"/v1/calls/{call_id}/recording", headers=luigis_agent.org.headers
        )
        assert recording.status_code == 404
        assert recording.headers["content-type"] == "application/problem+json"

    async def test_a_recording_agents_voice_calls_get_a_wav_served_as_audio(
        self, recording_app: tuple[httpx.AsyncClient, AppContext], luigis_yaml: bytes
    ) -> None:
        client, context = recording_app
        deployed = await recorded_agent(client, context, luigis_yaml)
        voice_call = await start(client, deployed)
        text_call = await start(client, deployed, mode="text")
        relpath = await stored_path(context, voice_call)
        assert relpath == recording_relpath(deployed.org.id, voice_call)
        assert await stored_path(context, text_call) is None
        url = f"/v1/calls/{voice_call}/recording"
        # Started, nothing written yet (or the file is gone): no recording.
        assert (await client.get(url, headers=deployed.org.headers)).status_code == 404

        path = await record_a_second(context, relpath)
        response = await client.get(url, headers=deployed.org.headers)

        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/wav"
        assert response.content == path.read_bytes()
        assert path.is_relative_to(context.settings.data_dir)

    async def test_another_orgs_or_an_unknown_call_is_a_404(
        self, recording_app: tuple[httpx.AsyncClient, AppContext], luigis_yaml: bytes
    ) -> None:
        client, context = recording_app
        deployed = await recorded_agent(client, context, luigis_yaml)
        call_id = await start(client, deployed)
        await record_a_second(context, recording_relpath(deployed.org.id, call_id))
        other = await new_org(context, "other")

        theirs = await client.get(f"/v1/calls/{call_id}/recording", headers=other.headers)
        unknown = await client.get("/v1/calls/call_nope/recording", headers=deployed.org.headers)
        assert (theirs.status_code, unknown.status_code) == (404, 404)

    async def test_record_can_be_set_at_creation(
        self, client: httpx.AsyncClient, luigis_agent: Deployed
    ) -> None:
        response = await client.post(
            "/v1/agents",
            json={"name": "recorded", "workflow_id": luigis_agent.workflow_id, "record": True},
            headers=luigis_agent.org.headers,
        )
        assert response.status_code == 201, response.text
        assert response.json()["record"] is True


class TestRetention:
    async def test_the_sweep_deletes_expired_recordings_and_keeps_recent_ones(
        self, recording_app: tuple[httpx.AsyncClient, AppContext], luigis_yaml: bytes
    ) -> None:
        client, context = recording_app
        deployed = await recorded_agent(client, context, luigis_yaml)
        old_call, new_call = await start(client, deployed), await start(client, deployed)
        old_path = await record_a_second(context, recording_relpath(deployed.org.id, old_call))
        new_path = await record_a_second(context, recording_relpath(deployed.org.id, new_call))
        async with context.sessionmaker() as session, session.begin():
            await session.execute(
                update(Call)
                .where(Call.id == old_call)
                .values(started_at=utcnow() - timedelta(days=7, minutes=1))
            )
        # Expired is refused at once, before any sweep ran.
        url = f"/v1/calls/{old_call}/recording"
        assert (await client.get(url, headers=deployed.org.headers)).status_code == 404

        assert await sweep_expired_recordings(context) >= 1

        assert not old_path.exists()
        assert new_path.exists()
        assert await stored_path(context, old_call) is None
        assert await stored_path(context, new_call) is not None
        assert await sweep_expired_recordings(context) == 0

    async def test_the_loop_sweeps_when_it_starts(
        self, recording_app: tuple[httpx.AsyncClient, AppContext], luigis_yaml: bytes
    ) -> None:
        client, context = recording_app
        deployed = await recorded_agent(client, context, luigis_yaml)
        call_id = await start(client, deployed)
        path = await record_a_second(context, recording_relpath(deployed.org.id, call_id))
        async with context.sessionmaker() as session, session.begin():
            await session.execute(
                update(Call)
                .where(Call.id == call_id)
                .values(started_at=utcnow() - timedelta(days=8))
            )

        loop = RetentionLoop(context)
        loop.start()
        try:
            for _ in range(400):
                if await stored_path(context, call_id) is None:
                    break
                await asyncio.sleep(0.025)
        finally:
            await loop.stop()
        assert await stored_path(context, call_id) is None
        assert not path.exists()

    async def test_zero_days_keeps_recordings_forever(
        self,
        recording_app: tuple[httpx.AsyncClient, AppContext],
        luigis_yaml: bytes,
        database_url: str,
        tmp_path: Path,
    ) -> None:
        client, context = recording_app
        deployed = await recorded_agent(client, context, luigis_yaml)
        call_id = await start(client, deployed)
        path = await record_a_second(context, recording_relpath(deployed.org.id, call_id))
        in_a_century = utcnow() + timedelta(days=36500)

        async with configured_app(
            database_url, data_dir=tmp_path / "data", recording_retention_days=0
        ) as keeping:
            assert await sweep_expired_recordings(keeping.state.context, in_a_century) == 0
        assert path.exists()


# --- inside a real call: the wrappers around the offline voice chain ---


@pytest.mark.slow
async def test_a_spoken_call_is_recorded_caller_left_agent_right(
    client: httpx.AsyncClient,
    context: AppContext,
    luigis_agent: Deployed,
    speech: Callable[[str], bytes],
    tmp_path: Path,
) -> None:
    call_id = await start(client, luigis_agent)
    async with context.sessionmaker() as session:
        call = await session.get(Call, call_id)
    assert call is not None
    messages: list[dict[str, Any]] = []
    heard_agent = bytearray()

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    async def send_audio(data: bytes) -> None:
        heard_agent.extend(data)

    def said(text: str) -> bool:
        return any(m.get("role") == "agent" and text in m.get("text", "") for m in messages)

    recorder = await CallRecorder.open(tmp_path / "call.wav")
    assert recorder is not None
    source = PushAudioInput(RATE)
    sink = PacedAudioOutput(send_audio, sample_rate=24000)
    sink.start()
    stop = asyncio.Event()
    running = asyncio.create_task(
        run_call(
            context,
            call,
            audio_input=RecordingAudioInput(source, recorder),
            audio_output=RecordingAudioOutput(sink, recorder),
            send=send,
            stop=stop,
        )
    )
    try:
        while not said("Luigi"):  # noqa: ASYNC110 (the call reports through `send` only)
            await asyncio.sleep(0.05)
        pcm = b"\x00\x00" * int(RATE * 4.0) + speech(BOOK) + b"\x00\x00" * int(RATE * 2.0)
        for offset in range(0, len(pcm), 640):  # real time, 20 ms frames
            source.push_pcm16(pcm[offset : offset + 640])
            await asyncio.sleep(0.02)
        for _ in range(1200):
            if said("how many"):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(3.0)  # the answer plays out
    finally:
        stop.set()
        await running
        await sink.aclose()
        source.close()
        await recorder.aclose()

    assert said("how many"), messages
    left, right = read_stereo(recorder.path)
    assert len(left) / RATE > 8.0
    models = await shared_models(context.settings)
    caller_text = await asyncio.to_thread(
        transcribe_pcm16, models, left.astype(np.int16).tobytes(), RATE
    )
    agent_text = await asyncio.to_thread(
        transcribe_pcm16, models, right.astype(np.int16).tobytes(), RATE
    )
    assert {"book", "table"} & words(caller_text), caller_text
    assert {"hi", "this"} & words(agent_text), agent_text  # the greeting
    assert {"many", "people"} & words(agent_text), agent_text
    # The caller spoke after the greeting, before the answer: the agent's side is quiet then.
    windows = [(start / RATE, (start + 1600) / RATE) for start in range(0, len(left), 1600)]
    speaking = [w for w in windows if rms(left, *w) > 1000]
    assert speaking
    assert np.median([rms(right, *w) for w in speaking]) < 100
