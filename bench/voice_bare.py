"""The bare offline voice chain, adapted from shared/baselines/voice/agent_session_pipeline.py.

No Voxflow: a roomless livekit `AgentSession` with faster-whisper as a non-streaming `stt.STT`
in `stt.StreamAdapter` over silero VAD, a `tts.TTS` pushing hibari's chunks (one per sentence),
VAD turn detection with endpointing min_delay 0, and a fixed reply. bench/voice_offline.py
runs it with the same model objects as Voxflow's chain, in the same process, and also reuses
the audio I/O below (a paced input and an output that records the first frame of each reply
and plays it out in real time).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import Agent, AgentSession, StopResponse, llm, stt, tts, utils
from livekit.agents.language import LanguageCode
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions
from livekit.agents.voice import io

REPLY = "Sure, I have booked a table for four people tomorrow at seven."
FAST_STT = {
    "beam_size": 1,
    "language": "en",
    "without_timestamps": True,
    "condition_on_previous_text": False,
}


class BareWhisperSTT(stt.STT):  # type: ignore[type-arg]
    def __init__(self, model: Any) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._model = model

    @property
    def model(self) -> str:
        return "faster-whisper"

    @property
    def provider(self) -> str:
        return "local"

    async def _recognize_impl(
        self, buffer: Any, *, language: Any = NOT_GIVEN, conn_options: APIConnectOptions
    ) -> stt.SpeechEvent:
        frame = rtc.combine_audio_frames(buffer)
        audio = np.frombuffer(frame.data, np.int16).astype(np.float32) / 32768
        text = await asyncio.to_thread(self._transcribe, audio)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[stt.SpeechData(language=LanguageCode("en"), text=text)],
        )

    def _transcribe(self, audio: Any) -> str:
        segments, _ = self._model.transcribe(audio, **FAST_STT)
        return " ".join(segment.text.strip() for segment in segments).strip()


class BareHibariTTS(tts.TTS):  # type: ignore[type-arg]
    """hibari, one chunk per sentence; `on_first_chunk` is called per synthesis."""

    def __init__(self, hibari: Any, on_first_chunk: Callable[[], None]) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False), sample_rate=24000, num_channels=1
        )
        self.hibari = hibari
        self.on_first_chunk = on_first_chunk

    @property
    def model(self) -> str:
        return "hibari"

    @property
    def provider(self) -> str:
        return "local"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _BareStream(tts=self, input_text=text, conn_options=conn_options)


class _BareStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        engine: BareHibariTTS = self._tts  # type: ignore[assignment]
        output_emitter.initialize(
            request_id=utils.shortuuid(), sample_rate=24000, num_channels=1, mime_type="audio/pcm"
        )
        chunks = iter(engine.hibari.stream(self.input_text))
        first = True
        while (audio := await asyncio.to_thread(next, chunks, None)) is not None:
            if first:
                engine.on_first_chunk()
                first = False
            output_emitter.push((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())
        output_emitter.flush()


class QueueAudioInput(io.AudioInput):
    """Frames the bench puts in `queue` (None ends the input)."""

    def __init__(self) -> None:
        super().__init__(label="bench-input")
        self.queue: asyncio.Queue[rtc.AudioFrame | None] = asyncio.Queue()

    async def __anext__(self) -> rtc.AudioFrame:
        frame = await self.queue.get()
        if frame is None:
            raise StopAsyncIteration
        return frame


class CaptureAudioOutput(io.AudioOutput):
    """Records when each reply's first frame arrives, then plays it out in real time."""

    def __init__(self) -> None:
        super().__init__(
            label="bench-output",
            capabilities=io.AudioOutputCapabilities(pause=False),
            sample_rate=None,
        )
        self.first_frames: list[float] = []
        self.started = asyncio.Event()  # a reply's first frame arrived
        self.played = asyncio.Event()  # and it played out
        self._in_segment = False
        self._pushed_s = 0.0
        self._playing: asyncio.Task[None] | None = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self._in_segment:
            self._in_segment, self._pushed_s = True, 0.0
            self.played.clear()
            self.started.set()
            self.first_frames.append(time.perf_counter())
            self.on_playback_started(created_at=time.time())
        self._pushed_s += frame.duration

    def flush(self) -> None:
        super().flush()
        if not self._in_segment:
            return
        duration, self._in_segment = self._pushed_s, False

        async def play() -> None:
            await asyncio.sleep(duration)
            self.on_playback_finished(playback_position=duration, interrupted=False)
            self.played.set()

        self._playing = asyncio.create_task(play())

    def clear_buffer(self) -> None:
        if self._playing is not None and not self._playing.done():
            self._playing.cancel()
            self.on_playback_finished(playback_position=0.0, interrupted=True)
            self.played.set()


class FixedReplyAgent(Agent):
    """Says REPLY after every turn; `on_turn` records when the turn reached the agent."""

    def __init__(self, on_turn: Callable[[str], None]) -> None:
        super().__init__(instructions="Bare offline chain.")
        self.on_turn = on_turn

    async def on_user_turn_completed(
        self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage
    ) -> None:
        self.on_turn(new_message.text_content or "")
        self.session.say(REPLY)
        raise StopResponse()


def bare_session(whisper: Any, hibari: Any, vad: Any, on_tts_first: Callable[[], None]) -> Any:
    return AgentSession(
        stt=stt.StreamAdapter(stt=BareWhisperSTT(whisper), vad=vad),
        tts=BareHibariTTS(hibari, on_tts_first),
        vad=vad,
        turn_handling={
            "turn_detection": "vad",
            "endpointing": {"min_delay": 0.0, "max_delay": 3.0},
            "interruption": {"mode": "vad"},
            "preemptive_generation": {"enabled": False},
        },
        user_away_timeout=None,
    )
