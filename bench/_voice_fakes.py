"""Instant livekit fakes for bench/voice_*.py (after shared/baselines/livekit/lkfakes.py).

No models, no network: an LLM for the bare agent, a streaming TTS, an STT whose final
transcripts the bench sends (directly, or in-band as a marked audio frame over the WebSocket),
a VAD that never hears anything (so a final transcript alone ends the caller's turn), and an
audio output that plays instantly and timestamps its first frame and the end of each reply.

bench/ is not a package; benches put it on sys.path and import this module by name.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from livekit import rtc
from livekit.agents import NOT_GIVEN, NotGivenOr, llm, stt, tts, utils, vad
from livekit.agents.language import LanguageCode
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from livekit.agents.utils import AudioBuffer
from livekit.agents.voice.io import AudioOutput, AudioOutputCapabilities

from voxflow.voice.offline import VoiceModels

# An audio frame that starts with these bytes carries a final transcript (the rest, UTF-8):
# the WebSocket client "speaks" by sending one, and the fake STT recognises it at once.
TRANSCRIPT_MARKER = b"VXFT"
LLM_REPLY = "A table for four, noted. For how many people?"
# What voice.call.build_session asks of livekit (VAD turns, no endpointing delay), for the bare
# side: the same turn pipeline, only the agent differs.
BARE_TURN_HANDLING: Any = {
    "turn_detection": "vad",
    "endpointing": {"min_delay": 0.0, "max_delay": 3.0},
    "interruption": {
        "enabled": True,
        "mode": "vad",
        "min_duration": 0.5,
        "resume_false_interruption": False,
        "false_interruption_timeout": None,
    },
    "preemptive_generation": {"enabled": False},
}


def transcript_frame(text: str) -> bytes:
    """PCM16 bytes (an even count) that MarkerSTT turns into the final transcript `text`."""
    data = TRANSCRIPT_MARKER + text.encode()
    return data + b" " * (len(data) % 2)


class InstantLLM(llm.LLM):  # type: ignore[type-arg]
    """Replies `reply` in a few chunks, instantly (the bare agent's brain)."""

    def __init__(self, reply: str = LLM_REPLY, n_chunks: int = 8) -> None:
        super().__init__()
        step = max(1, len(reply) // n_chunks)
        self.chunks = [reply[i : i + step] for i in range(0, len(reply), step)]

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        return InstantLLMStream(
            self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options
        )


class InstantLLMStream(llm.LLMStream):
    async def _run(self) -> None:
        engine: InstantLLM = self._llm  # type: ignore[assignment]
        for chunk in engine.chunks:
            delta = llm.ChoiceDelta(role="assistant", content=chunk)
            self._event_ch.send_nowait(llm.ChatChunk(id=str(id(self)), delta=delta))


class InstantStreamingTTS(tts.TTS):  # type: ignore[type-arg]
    """Streaming TTS: silence as long as the text needs (`s_per_char`), the moment text comes.

    Audio in proportion to the text keeps the two sides fair whatever way their replies are cut
    (the bare LLM streams 8 chunks, Voxflow one line at a time).
    """

    def __init__(self, *, sample_rate: int = 24000, s_per_char: float = 0.005) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=True),
            sample_rate=sample_rate,
            num_channels=1,
        )
        self.s_per_char = s_per_char

    def audio_for(self, text: str) -> bytes:
        return b"\x00\x00" * int(self.sample_rate * self.s_per_char * len(text))

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return InstantChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.SynthesizeStream:
        return InstantSynthStream(tts=self, conn_options=conn_options)


class InstantChunkedStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        engine: InstantStreamingTTS = self._tts  # type: ignore[assignment]
        output_emitter.initialize(
            request_id=utils.shortuuid("tts_"),
            sample_rate=engine.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
        )
        output_emitter.push(engine.audio_for(self.input_text))
        output_emitter.flush()


class InstantSynthStream(tts.SynthesizeStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        engine: InstantStreamingTTS = self._tts  # type: ignore[assignment]
        output_emitter.initialize(
            request_id=utils.shortuuid("tts_"),
            sample_rate=engine.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
            stream=True,
        )
        segment_open = False
        async for data in self._input_ch:
            if isinstance(data, str):
                if not segment_open:
                    output_emitter.start_segment(segment_id=utils.shortuuid("seg_"))
                    segment_open = True
                if audio := engine.audio_for(data):
                    output_emitter.push(audio)
            elif segment_open:  # the flush sentinel ends the segment
                output_emitter.end_segment()
                segment_open = False
        if segment_open:
            output_emitter.end_segment()


class MarkerSTT(stt.STT):  # type: ignore[type-arg]
    """Streaming STT: a final transcript per `emit_final(text)`, or per marked audio frame."""

    def __init__(self) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=False))
        self.streams: list[MarkerSTTStream] = []
        self.opened = asyncio.Event()

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        return final_transcript("")

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        recognizer = MarkerSTTStream(stt=self, conn_options=conn_options)
        self.streams.append(recognizer)
        self.opened.set()
        return recognizer

    def emit_final(self, text: str) -> None:
        """The caller's words, as the latest stream's final transcript."""
        self.streams[-1].emit_final(text)


class MarkerSTTStream(stt.RecognizeStream):
    def emit_final(self, text: str) -> None:
        self._event_ch.send_nowait(final_transcript(text))

    async def _run(self) -> None:
        async for frame in self._input_ch:
            if isinstance(frame, rtc.AudioFrame):
                data = bytes(frame.data)
                if data.startswith(TRANSCRIPT_MARKER):
                    self.emit_final(data[len(TRANSCRIPT_MARKER) :].decode().strip())


def final_transcript(text: str) -> stt.SpeechEvent:
    return stt.SpeechEvent(
        type=stt.SpeechEventType.FINAL_TRANSCRIPT,
        alternatives=[stt.SpeechData(language=LanguageCode("en"), text=text)],
    )


class SilentVAD(vad.VAD):
    """Hears no speech: livekit then ends a turn on the final transcript (VAD turn mode)."""

    def __init__(self) -> None:
        super().__init__(capabilities=vad.VADCapabilities(update_interval=0.032))

    def stream(self) -> vad.VADStream:
        return SilentVADStream(self)


class SilentVADStream(vad.VADStream):
    async def _main_task(self) -> None:
        async for _ in self._input_ch:
            pass


def fake_models() -> VoiceModels:
    """What `run_call(models=...)` needs with fake providers: only the VAD is used."""
    return VoiceModels(whisper=None, hibari=None, vad=SilentVAD(), tts_lock=threading.Lock())


class InstantAudioOutput(AudioOutput):
    """Plays instantly: a reply is over at its flush. Calls the hooks with perf_counter times."""

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        on_first_frame: Callable[[float], None] | None = None,
        on_reply_played: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(
            label="bench-instant-output",
            capabilities=AudioOutputCapabilities(pause=False),
            sample_rate=sample_rate,
        )
        self.on_first_frame = on_first_frame
        self.on_reply_played = on_reply_played
        self.frames = 0
        self._pushed_s = 0.0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        self.frames += 1
        if not self._pushed_s:
            now = time.perf_counter()
            self.on_playback_started(created_at=time.time())
            if self.on_first_frame is not None:
                self.on_first_frame(now)
        self._pushed_s += frame.duration

    def flush(self) -> None:
        super().flush()
        if self._pushed_s:
            self._finish(interrupted=False)

    def clear_buffer(self) -> None:
        if self._pushed_s:
            self._finish(interrupted=True)

    def _finish(self, *, interrupted: bool) -> None:
        position, self._pushed_s = self._pushed_s, 0.0
        self.on_playback_finished(playback_position=position, interrupted=interrupted)
        if self.on_reply_played is not None:
            self.on_reply_played(time.perf_counter())


def pss_mb() -> float:
    """This process's proportional set size (shared pages split among their users), MB."""
    with open("/proc/self/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return float("nan")
